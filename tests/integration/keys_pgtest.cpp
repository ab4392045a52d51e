// Keys and credentials: renewal on use and by the sweep, untrusted refreshUri, dead keys, client id
// checks, least-privilege roles, and no credential in any log line.
#define BOOST_TEST_MODULE keys
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

namespace {

struct file_env : shared_environment {
  file_env() : shared_environment("[sync]\nretry_base = 1s\n") {}
};
BOOST_TEST_GLOBAL_FIXTURE(file_env);

// A TCP listener that counts what reaches it, standing in for a host a hostile refreshUri names.
class tripwire {
 public:
  tripwire() : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~tripwire() {
    io_.stop();
    thread_.join();
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_; }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, boost::asio::ip::tcp::socket) {
      if (!ec) ++connections_;
      accept();
    });
  }
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_key_15_days_old_is_renewed_before_use) {
  const std::string user = "renew-day-15";
  E().emu.put_items(user, emulator_instance::make_items("r15", 4));
  const auto renewals_before = E().emu.stat("renewals");
  E().upload(user, E().emu.mint_key(user, "collections", unix_now() - 15 * 86400, unix_now() + 15 * 86400));
  E().drain_ok();
  BOOST_TEST(E().emu.stat("renewals") - renewals_before == 1);
  BOOST_TEST(
      E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = '" + user +
                "' AND collections_key_expires_at > now() + interval '29 days' AND last_error IS NULL") == 1);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_keys WHERE user_id = '" + user +
                       "' AND collections_key_renewed_at IS NOT NULL AND collections_key_issued_at > now() - "
                       "interval '1 hour'") == 1);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = '" + user + "'") ==
             4);

  // A young key is left alone.
  const std::string fresh = "renew-not-due";
  E().upload(fresh, E().emu.mint_key(fresh));
  const auto before = E().emu.stat("renewals");
  E().drain_ok();
  BOOST_TEST(E().emu.stat("renewals") == before);
}

BOOST_AUTO_TEST_CASE(a_refresh_uri_at_another_host_receives_nothing) {
  tripwire listener;
  const std::string user = "hostile-refresh-uri";
  E().emu.put_items(user, emulator_instance::make_items("hr", 2));
  const std::string hostile = "https://127.0.0.1:" + std::to_string(listener.port()) + "/v6.0/b2b/keys/renew";
  const auto key =
      E().emu.mint_key(user, "collections", unix_now() - 20 * 86400, unix_now() + 10 * 86400, hostile);
  E().upload(user, key);
  auto r = E().drain_ok();
  std::this_thread::sleep_for(100ms);
  BOOST_TEST(listener.connections() == 0);
  BOOST_TEST(r.output.find("refused to renew the collections key at host 127.0.0.1") != std::string::npos, r.output);
  // The key itself is still good: the sync goes on with it.
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = '" + user + "'") ==
             2);
}

// A refreshUri on the right host but another path would have the service token and the key POSTed to
// any Store call the key's author chooses (here a consume).
BOOST_AUTO_TEST_CASE(a_refresh_uri_with_another_path_on_the_store_host_receives_nothing) {
  const std::string user = "hostile-refresh-path";
  E().emu.put_items(user, emulator_instance::make_items("hp", 2));
  const std::string hostile = E().emu.base_url() + "/v6.0/collections/consume?evil=1";
  const auto key =
      E().emu.mint_key(user, "collections", unix_now() - 20 * 86400, unix_now() + 10 * 86400, hostile);
  const auto consumes_before = E().emu.stat("requestsByPath", "/v6.0/collections/consume");
  const auto renewals_before = E().emu.stat("renewals");
  E().upload(user, key);
  auto r = E().drain_ok();
  BOOST_TEST(E().emu.stat("requestsByPath", "/v6.0/collections/consume") == consumes_before);
  BOOST_TEST(E().emu.stat("renewals") == renewals_before);
  BOOST_TEST(r.output.find("refused to renew the collections key: its refreshUri is not the Store's renew "
                           "endpoint") != std::string::npos,
             r.output);
  BOOST_TEST(r.output.find("evil") == std::string::npos, r.output);
  // The key itself is still good: the sync goes on with it.
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = '" + user + "'") ==
             2);
}

BOOST_AUTO_TEST_CASE(a_key_the_store_refuses_is_dead_until_a_new_one_is_uploaded) {
  const std::string user = "dead-key-player";
  E().emu.put_items(user, emulator_instance::make_items("dk", 3));
  // A key signed by another Store (emulator) instance: well-formed, unexpired, refused with 401.
  emulator_instance other;
  E().upload(user, other.mint_key(user));
  E().drain_ok();
  auto err = E().value("SELECT last_error FROM entitlement_sync.user_status WHERE user_id = '" + user + "'");
  BOOST_TEST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("AuthenticationTokenInvalid") != std::string::npos, *err);
  BOOST_TEST(err->find("must request a new key") != std::string::npos, *err);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_keys WHERE user_id = '" + user +
                       "' AND collections_key_dead_at IS NOT NULL") == 1);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = '" + user +
                       "' AND state = 'failed' AND attempts = 1") == 1);  // not retried

  // A resync does not send the dead key again, and says since when it is dead.
  const auto queries = E().emu.stat("queriesByUser", user);
  exec_sql(E().pg.url(), "SELECT entitlement_sync.request_resync('" + user + "')");
  E().drain_ok();
  BOOST_TEST(E().emu.stat("queriesByUser", user) == queries);
  err = E().value("SELECT last_error FROM entitlement_sync.user_status WHERE user_id = '" + user + "'");
  BOOST_TEST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("was refused by the Store at 20") != std::string::npos, *err);

  // A new upload brings the player back.
  E().upload(user, E().emu.mint_key(user));
  E().drain_ok();
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = '" + user +
                       "' AND last_error IS NULL") == 1);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = '" + user + "'") ==
             3);
}

BOOST_AUTO_TEST_CASE(a_key_for_another_client_id_is_refused_locally) {
  const std::string user = "other-app-player";
  auto body = E().emu.control("POST", "/_emulator/keys",
                              "{\"userId\":\"" + user + "\",\"kind\":\"collections\",\"clientId\":\"someone-else\"}");
  const std::string key(boost::json::parse(body).at("key").as_string());
  E().upload(user, key);
  E().drain_ok();
  auto err = E().value("SELECT last_error FROM entitlement_sync.user_status WHERE user_id = '" + user + "'");
  BOOST_TEST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("InconsistentClientId") != std::string::npos, *err);
  BOOST_TEST(E().emu.stat("queriesByUser", user) == 0);
}

BOOST_AUTO_TEST_CASE(the_sweep_renews_keys_between_logins) {
  const std::string user = "sweep-player";
  // Synced with renewal effectively off, so the key is still 20 days old afterwards.
  temp_dir dir("esd-sweep");
  auto no_renew = write_daemon_config(dir.path(), E().pg.url(), E().emu,
                                      "[keys]\nrenew_after = 30d\nrenew_before_expiry = 0s\n");
  E().upload(user, E().emu.mint_key(user, "collections", unix_now() - 20 * 86400, unix_now() + 10 * 86400));
  auto r = run_daemon(no_renew, {"run", "--drain"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = '" + user +
                       "' AND collections_key_expires_at < now() + interval '11 days'") == 1);

  std::filesystem::create_directories(dir.path() / "s");
  auto sweeping = write_daemon_config(dir.path() / "s", E().pg.url(), E().emu, "[keys]\nsweep_interval = 2s\nsweep_batch = 20\n");
  background_process daemon({daemon_paths::daemon_bin(), "--config", sweeping.string(), "run"}, dir.path() / "d.log");
  const std::string renewed = "SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = '" + user +
                              "' AND collections_key_expires_at > now() + interval '29 days'";
  wait_for([&] { return E().count(renewed) > 0; }, 30s);
  daemon.signal(SIGTERM);
  BOOST_TEST_REQUIRE(daemon.wait(30s).has_value());
  BOOST_TEST(E().count(renewed) == 1);
  BOOST_TEST(daemon.log().find("keys: sweep renewed user=sweep-player") != std::string::npos, daemon.log());
  check_no_credentials(daemon.log(), "the sweeping daemon");
}

BOOST_AUTO_TEST_CASE(roles_give_each_user_only_what_it_needs) {
  exec_sql(E().pg.url(),
           "CREATE ROLE game_backend LOGIN IN ROLE entitlement_reader; "
           "CREATE ROLE support_desk LOGIN IN ROLE entitlement_admin; "
           "CREATE ROLE syncd_login LOGIN IN ROLE entitlement_syncd");
  auto as = [](const std::string& role) {
    auto url = E().pg.url();
    return url.replace(url.find("user=postgres"), 13, "user=" + role);
  };
  const std::string backend = as("game_backend"), support = as("support_desk");
  // The game backend: hands over keys, reads entitlements, never reads a key back.
  exec_sql(backend, "INSERT INTO entitlement_sync.key_uploads (user_id, collections_key) VALUES ('role-player', "
                    "'" + E().emu.mint_key("role-player") + "')");
  BOOST_TEST(query_count(backend, "SELECT count(*) FROM entitlement_sync.entitlements") >= 0);
  BOOST_CHECK_THROW(query_value(backend, "SELECT collections_key FROM entitlement_sync.user_keys LIMIT 1"),
                    pqxx::insufficient_privilege);
  BOOST_CHECK_THROW(query_value(backend, "SELECT collections_key FROM entitlement_sync.key_uploads LIMIT 1"),
                    pqxx::insufficient_privilege);
  BOOST_CHECK_THROW(exec_sql(backend, "SELECT entitlement_sync.request_resync('role-player')"),
                    pqxx::insufficient_privilege);
  // Support: resync and status, the queue without keys; no key.
  exec_sql(support, "SELECT entitlement_sync.request_resync('role-player')");
  BOOST_TEST(query_count(support, "SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = 'role-player'") == 1);
  BOOST_TEST(query_count(support, "SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'role-player'") == 2);
  BOOST_CHECK_THROW(query_value(support, "SELECT collections_key FROM entitlement_sync.user_keys LIMIT 1"),
                    pqxx::insufficient_privilege);
  BOOST_CHECK_THROW(query_value(support, "SELECT collections_key FROM entitlement_sync.key_uploads LIMIT 1"),
                    pqxx::insufficient_privilege);
  BOOST_CHECK_THROW(exec_sql(support, "DELETE FROM entitlement_sync.entitlements"), pqxx::insufficient_privilege);
  // The daemon's own role runs the whole pipeline.
  temp_dir dir("esd-roles");
  auto cfg = write_daemon_config(dir.path(), as("syncd_login"), E().emu);
  auto r = run_daemon(cfg, {"run", "--drain"});
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = 'role-player' "
                       "AND last_synced_at IS NOT NULL AND pending = 0") == 1);
}

// Every function of the schema, today's and any a later migration adds, is closed to PUBLIC (PostgreSQL
// opens a new function to every role); the roles that need one still have it, and triggers still fire.
BOOST_AUTO_TEST_CASE(no_function_of_the_schema_is_executable_by_public) {
  exec_sql(E().pg.url(),
           "CREATE ROLE fn_nobody LOGIN; "
           "CREATE ROLE fn_backend LOGIN IN ROLE entitlement_reader; "
           "CREATE ROLE fn_support LOGIN IN ROLE entitlement_admin");
  const std::string functions =
      "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
      "WHERE n.nspname = 'entitlement_sync'";
  BOOST_TEST_REQUIRE(E().count("SELECT count(*) " + functions) >= 8);
  const auto open_to_public = E().value("SELECT string_agg(p.oid::regprocedure::text, ', ') " + functions +
                                        " AND has_function_privilege('fn_nobody', p.oid, 'EXECUTE')");
  BOOST_TEST(!open_to_public.has_value(),
             "executable by a role with no grants: " << open_to_public.value_or(""));
  // No ACL entry for PUBLIC (grantee 0) on any of them either.
  BOOST_TEST(E().count("SELECT count(*) " + functions +
                       " AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, "
                       "acldefault('f', p.proowner))) a WHERE a.grantee = 0)") == 0);

  auto as = [](const std::string& role) {
    auto url = E().pg.url();
    return url.replace(url.find("user=postgres"), 13, "user=" + role);
  };
  const std::string nobody = as("fn_nobody"), backend = as("fn_backend"), support = as("fn_support");
  BOOST_CHECK_THROW(exec_sql(nobody, "SELECT entitlement_sync.request_resync('fn-player')"),
                    pqxx::insufficient_privilege);
  // The game backend's inserts fire the triggers (queueing, idempotency keys) without any EXECUTE right.
  exec_sql(backend,
           "INSERT INTO entitlement_sync.key_uploads (user_id, collections_key) VALUES ('fn-player', "
           "'" +
               E().emu.mint_key("fn-player") + "')");
  exec_sql(backend,
           "INSERT INTO entitlement_sync.grant_requests (user_id, product_id, sku_id, availability_id) "
           "VALUES ('fn-player', '9NBLGGH4R315', '0010', '9RT7C09D5J3W')");
  exec_sql(backend,
           "INSERT INTO entitlement_sync.consume_requests (user_id, product_id) VALUES ('fn-player', "
           "'9NBLGGH5WVP6')");
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'fn-player'") == 3);
  BOOST_CHECK_THROW(exec_sql(backend, "SELECT entitlement_sync.request_resync('fn-player')"),
                    pqxx::insufficient_privilege);
  // Support keeps its functions.
  exec_sql(support, "SELECT entitlement_sync.request_resync('fn-player')");
  exec_sql(support, "SELECT entitlement_sync.request_resync(ARRAY['fn-player'], true)");
  const auto backfill = query_value(support, "SELECT entitlement_sync.request_backfill()");
  BOOST_TEST_REQUIRE(backfill.has_value());
  exec_sql(support, "SELECT entitlement_sync.cancel_backfill(" + *backfill + ")");
  BOOST_CHECK_THROW(exec_sql(support, "SELECT entitlement_sync.feed_backfill(1)"),
                    pqxx::insufficient_privilege);
  // Leave nothing queued for the other cases.
  exec_sql(E().pg.url(),
           "DELETE FROM entitlement_sync.grant_requests WHERE user_id = 'fn-player'; "
           "DELETE FROM entitlement_sync.consume_requests WHERE user_id = 'fn-player'; "
           "DELETE FROM entitlement_sync.key_uploads WHERE user_id = 'fn-player'");
}

BOOST_AUTO_TEST_CASE(with_encryption_a_database_dump_holds_no_key) {
  temp_dir dir("esd-kek");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.path() / name) << text;
    return (dir.path() / name).string();
  };
  auto rand32 = run_process({"openssl", "rand", "-base64", "32"}, 10s);
  auto rand32b = run_process({"openssl", "rand", "-base64", "32"}, 10s);
  BOOST_TEST_REQUIRE(rand32.exit_code == 0);
  const auto k1 = rand32.output.substr(0, rand32.output.find('\n'));
  const auto k2 = rand32b.output.substr(0, rand32b.output.find('\n'));
  const auto ring1 = write("kek1", "# current key first\nk1 " + k1 + "\n");
  const auto ring2 = write("kek2", "k2 " + k2 + "\nk1 " + k1 + "\n");  // rotated: k2 seals, k1 still opens

  environment env({}, "[security]\nkey_encryption_key_file = " + ring1 + "\n");
  BOOST_TEST(run_daemon(env.config, {"check-config"}).exit_code == 0);
  env.emu.put_items("sealed-player", emulator_instance::make_items("sp", 2));
  const auto ckey = env.emu.mint_key("sealed-player");
  const auto pkey = env.emu.mint_key("sealed-player", "purchase");
  env.upload("sealed-player", ckey, pkey);
  auto r = env.drain();
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.entitlements") == 2);
  BOOST_TEST(query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.user_keys WHERE collections_key LIKE "
                                       "'esd1:k1:%' AND purchase_key LIKE 'esd1:k1:%'") == 1);

  auto dump = run_process({"pg_dump", env.pg.url()}, 60s);
  BOOST_TEST_REQUIRE(dump.exit_code == 0, dump.output);
  BOOST_TEST(dump.output.find("esd1:k1:") != std::string::npos);  // the dump does hold the sealed keys
  BOOST_TEST(dump.output.find(ckey) == std::string::npos);
  BOOST_TEST(dump.output.find(pkey) == std::string::npos);
  BOOST_TEST(dump.output.find(ckey.substr(0, 40)) == std::string::npos);

  // Rotation: with k2 current and k1 kept, the old values still open and renewals are sealed with k2.
  temp_dir d2("esd-kek-rot");
  auto rotated = write_daemon_config(d2.path(), env.pg.url(), env.emu,
                                     "[security]\nkey_encryption_key_file = " + ring2 + "\n"
                                     "[keys]\nrenew_after = 1h\n");
  exec_sql(env.pg.url(), "UPDATE entitlement_sync.user_keys SET collections_key_issued_at = now() - interval '2 hours'");
  exec_sql(env.pg.url(), "SELECT entitlement_sync.request_resync('sealed-player')");
  r = run_daemon(rotated, {"run", "--drain"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.user_status WHERE last_error IS NULL") == 1);
  BOOST_TEST(query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.user_keys WHERE collections_key LIKE "
                                       "'esd1:k2:%'") == 1);

  // Without the key file, the sealed keys cannot be used, and the reason says what to fix.
  temp_dir d3("esd-kek-none");
  auto plain = write_daemon_config(d3.path(), env.pg.url(), env.emu);
  exec_sql(env.pg.url(), "SELECT entitlement_sync.request_resync('sealed-player')");
  r = run_daemon(plain, {"run", "--drain"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  auto err = query_value(env.pg.url(), "SELECT last_error FROM entitlement_sync.user_status");
  BOOST_TEST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("key_encryption_key_file") != std::string::npos, *err);

  // A broken key file is named by check-config.
  temp_dir d4("esd-kek-bad");
  auto bad = write_daemon_config(d4.path(), env.pg.url(), env.emu,
                                 "[security]\nkey_encryption_key_file = " + write("bad", "k1 c2hvcnQ=\n") + "\n");
  auto check = run_daemon(bad, {"check-config"});
  BOOST_TEST(check.exit_code == 2);
  BOOST_TEST(check.output.find("key_encryption_key_file") != std::string::npos, check.output);
}
