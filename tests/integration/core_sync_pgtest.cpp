// The core path, end to end: key upload -> claim -> Entra token -> collections pages -> entitlements,
// through a real PostgreSQL, the emulator over verified TLS, and the real daemon binary.
#define BOOST_TEST_MODULE core_sync
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <thread>

#include "harness/harness.hpp"
#include "db/pg_timestamp.hpp"
#include "store/store_date.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

namespace {

// One environment for the whole file; every test uses its own players.
// watermark_overlap = 0 makes "fetches only what changed" exact; the overlap has its own test.
struct file_env : shared_environment {
  file_env() : shared_environment("[sync]\nwatermark_overlap = 0s\nretry_base = 1s\n") {}
};
BOOST_TEST_GLOBAL_FIXTURE(file_env);

std::optional<std::string> last_modified_after(const std::string& user) {
  auto v = E().emu.stats();
  auto* m = v.as_object().if_contains("lastModifiedAfter");
  if (!m || !m->is_object()) return std::nullopt;
  auto* p = m->as_object().if_contains(user);
  if (!p || p->is_null()) return std::nullopt;
  return std::string(p->as_string());
}

}  // namespace

BOOST_AUTO_TEST_CASE(first_sync_of_250_items_takes_three_pages_and_is_exact) {
  const std::string user = "first-sync-player";
  E().emu.put_items(user, emulator_instance::make_items("fs", 250));
  auto key = E().emu.mint_key(user);
  E().upload(user, key);
  E().drain_ok();

  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = '" + user + "'") ==
             250);
  BOOST_TEST(E().emu.stat("queriesByUser", user) == 3);  // 100 + 100 + 50
  // 7-digit fractions truncated to the microsecond; the "no end" date is infinity.
  BOOST_TEST(*E().value("SELECT acquired_date::text FROM entitlement_sync.entitlements WHERE user_id = '" +
                        user + "' AND item_id = 'fs-1'") == "2024-02-02 10:01:07.123456+00");
  BOOST_TEST(*E().value("SELECT end_date::text FROM entitlement_sync.entitlements WHERE user_id = '" + user +
                        "' AND item_id = 'fs-1'") == "infinity");
  BOOST_TEST(
      *E().value("SELECT product_id || '/' || sku_id || '/' || product_type || '/' || status || '/' || "
                 "quantity || '/' || transaction_id FROM entitlement_sync.entitlements WHERE user_id = '" +
                 user + "' AND item_id = 'fs-3'") == "9P100003/0010/Game/Active/1/tx-fs-3");
  // The watermark is the highest modifiedDate, and user_status tells support all is well.
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.users u WHERE user_id = '" + user +
                       "' AND watermark = (SELECT max(modified_date) FROM entitlement_sync.entitlements e "
                       "WHERE e.user_id = u.user_id)") == 1);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = '" + user +
                       "' AND last_synced_at IS NOT NULL AND last_error IS NULL AND pending = 0 "
                       "AND collections_key_expires_at > now() + interval '29 days'") == 1);
  // The queue row no longer holds the key once claimed.
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = '" + user +
                       "' AND (collections_key IS NOT NULL OR state <> 'done')") == 0);
}

// Text the Store sends is stored as sent, whatever it holds: the items go to PostgreSQL as array literals,
// where quotes, backslashes, commas, braces and the word NULL all mean something.
BOOST_AUTO_TEST_CASE(awkward_text_in_items_is_stored_exactly) {
  const std::string user = "awkward-text-player";
  const std::string odd = "a\"b\\c,d{e}f NULL \\\"g\\\\ h\u00e9";
  boost::json::array items{boost::json::object{
      {"itemId", "odd-1"}, {"productId", odd}, {"skuId", "NULL"}, {"productType", "Durable"}, {"status", "Active"},
      {"modifiedDate", "2024-05-01T10:00:00.0000000+00:00"}, {"acquiredDate", "2024-05-01T10:00:00.0000000+00:00"},
      {"tags", boost::json::array{"x\"y", "p\\q", "", "{}"}}, {"transactionId", "\\"}}};
  E().emu.put_items(user, boost::json::serialize(items));
  E().upload(user, E().emu.mint_key(user));
  E().drain_ok();
  const std::string where = " FROM entitlement_sync.entitlements WHERE user_id = '" + user + "' AND item_id = 'odd-1'";
  BOOST_TEST(*E().value("SELECT product_id" + where) == odd);
  BOOST_TEST(*E().value("SELECT sku_id" + where) == "NULL");
  BOOST_TEST(*E().value("SELECT transaction_id" + where) == "\\");
  BOOST_TEST(*E().value("SELECT array_length(tags, 1)::text" + where) == "4");
  BOOST_TEST(*E().value("SELECT tags[1] || '|' || tags[2] || '|' || tags[3] || '|' || tags[4]" + where) ==
             "x\"y|p\\q||{}");
}

BOOST_AUTO_TEST_CASE(incremental_sync_fetches_only_what_changed_and_revocations_update_rows) {
  const std::string user = "incremental-player";
  E().emu.put_items(user, emulator_instance::make_items("inc", 30));
  E().upload(user, E().emu.mint_key(user));
  E().drain_ok();
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = '" + user + "'") ==
             30);
  const auto watermark =
      E().value("SELECT watermark::text FROM entitlement_sync.users WHERE user_id = '" + user + "'");
  BOOST_TEST_REQUIRE(watermark.has_value());

  // The watermark is truncated to PostgreSQL's microsecond, so an item at the watermark whose Store date
  // has a non-zero 7th digit is served once more: never skipped, at worst fetched twice.
  const auto watermark_us = esd::db::from_pg_timestamptz(*watermark)->micros;
  long long at_watermark = 0;
  auto listed = boost::json::parse(E().emu.control("GET", "/_emulator/players/" + user + "/items"));
  const auto& items = listed.is_object() ? listed.at("items").as_array() : listed.as_array();
  for (const auto& it : items) {
    const std::string date(it.at("modifiedDate").as_string());
    const std::string id(it.at("itemId").as_string());
    const auto dot = date.find('.');
    const bool seventh_digit = dot != std::string::npos && date.size() > dot + 7 && date[dot + 7] != '0';
    if (id != "inc-7" && esd::store::parse_store_date(date)->micros == watermark_us && seventh_digit)
      ++at_watermark;
  }
  std::this_thread::sleep_for(20ms);  // the Store's clock must move past the watermark
  E().emu.control("POST", "/_emulator/players/" + user + "/items/inc-7", R"({"status":"Revoked"})");
  E().emu.put_items(user, emulator_instance::make_items("inc-new", 2));
  const auto served_before = E().emu.stat("itemsServed");
  E().exec_sql_resync(user);
  E().drain_ok();

  // One revoked + two new (+ the boundary item), nothing else.
  BOOST_TEST(E().emu.stat("itemsServed") - served_before == 3 + at_watermark);
  BOOST_TEST(last_modified_after(user).has_value());
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = '" + user + "'") ==
             32);
  BOOST_TEST(*E().value("SELECT status FROM entitlement_sync.entitlements WHERE user_id = '" + user +
                        "' AND item_id = 'inc-7'") == "Revoked");
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.users WHERE user_id = '" + user +
                       "' AND watermark > '" + *watermark + "'") == 1);
}

BOOST_AUTO_TEST_CASE(full_resync_ignores_the_watermark) {
  const std::string user = "full-resync-player";
  E().emu.put_items(user, emulator_instance::make_items("full", 12));
  E().upload(user, E().emu.mint_key(user));
  E().drain_ok();
  // Someone damaged a row; a full resync repairs it from the Store.
  exec_sql(E().pg.url(), "UPDATE entitlement_sync.entitlements SET status = 'Banned' WHERE user_id = '" + user +
                             "' AND item_id = 'full-0'");
  const auto served_before = E().emu.stat("itemsServed");
  exec_sql(E().pg.url(), "SELECT entitlement_sync.request_resync('" + user + "', true)");
  E().drain_ok();
  BOOST_TEST(E().emu.stat("itemsServed") - served_before == 12);
  BOOST_TEST(!last_modified_after(user).has_value());
  BOOST_TEST(*E().value("SELECT status FROM entitlement_sync.entitlements WHERE user_id = '" + user +
                        "' AND item_id = 'full-0'") == "Active");
}

BOOST_AUTO_TEST_CASE(malformed_key_is_recorded_and_other_players_still_sync) {
  E().emu.put_items("good-player-1", emulator_instance::make_items("g1", 5));
  E().emu.put_items("good-player-2", emulator_instance::make_items("g2", 5));
  E().upload("good-player-1", E().emu.mint_key("good-player-1"));
  E().upload("bad-key-player", std::string("this-is-not-a-jwt"));
  E().upload("wrong-kind-player", E().emu.mint_key("wrong-kind-player", "purchase"));
  E().upload("good-player-2", E().emu.mint_key("good-player-2"));
  auto r = E().drain();
  BOOST_TEST(r.exit_code == 0, r.output);

  BOOST_TEST(
      E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id LIKE 'good-player-%'") ==
      10);
  auto bad =
      E().value("SELECT last_error FROM entitlement_sync.user_status WHERE user_id = 'bad-key-player'");
  BOOST_TEST_REQUIRE(bad.has_value());
  BOOST_TEST(bad->find("not a valid Microsoft Store ID key") != std::string::npos, *bad);
  auto wrong =
      E().value("SELECT last_error FROM entitlement_sync.user_status WHERE user_id = 'wrong-kind-player'");
  BOOST_TEST_REQUIRE(wrong.has_value());
  BOOST_TEST(wrong->find("is a purchase key") != std::string::npos, *wrong);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'bad-key-player' "
                       "AND state = 'failed' AND last_error IS NOT NULL") == 1);
  // A key must never reach the log.
  BOOST_TEST(r.output.find("this-is-not-a-jwt") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_expired_key_is_not_sent_and_says_so) {
  const std::string user = "expired-key-player";
  const long long now = unix_now();
  const auto queries_before = E().emu.stat("queriesByUser", user);
  E().upload(user, E().emu.mint_key(user, "collections", now - 40 * 86400, now - 10 * 86400));
  E().drain_ok();
  auto err = E().value("SELECT last_error FROM entitlement_sync.user_status WHERE user_id = '" + user + "'");
  BOOST_TEST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("expired") != std::string::npos, *err);
  BOOST_TEST(E().emu.stat("queriesByUser", user) == queries_before);
}

BOOST_AUTO_TEST_CASE(an_upload_wakes_a_running_daemon_without_polling) {
  // poll_interval is an hour: only the NOTIFY can wake it in time.
  temp_dir dir("esd-wake");
  auto cfg = write_daemon_config(dir.path(), E().pg.url(), E().emu, "[sync]\npoll_interval = 3600s\n");
  background_process daemon({daemon_paths::daemon_bin(), "--config", cfg.string(), "run"},
                            dir.path() / "daemon.log");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("info started"), daemon.log());
  const std::string user = "wake-player";
  E().emu.put_items(user, emulator_instance::make_items("wake", 3));
  const auto key = E().emu.mint_key(user);
  E().upload(user, key);
  const std::string items =
      "SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = '" + user + "'";
  wait_for([&] { return E().count(items) >= 3; }, 20s, 10ms);
  BOOST_TEST(E().count(items) == 3);
  daemon.signal(SIGTERM);
  auto status = daemon.wait(30s);
  BOOST_TEST_REQUIRE(status.has_value());
  BOOST_TEST(*status == 0);
  const auto log = daemon.log();
  BOOST_TEST(log.find(key) == std::string::npos);
  check_no_credentials(log, "the daemon");
  BOOST_TEST(log.find("user=wake-player") != std::string::npos, log);
}

BOOST_AUTO_TEST_CASE(request_resync_of_an_unknown_user_is_an_error) {
  BOOST_CHECK_THROW(exec_sql(E().pg.url(), "SELECT entitlement_sync.request_resync('nobody-at-all')"),
                    pqxx::sql_error);
}

namespace {

// What a migration leaves behind: every catalog row of the schema's objects and of the roles, with the
// transaction that last wrote it (xmin), and the schema_migrations rows. A migration applied again rewrites
// some of them (a replaced function or view, a re-granted privilege), even where its SQL is idempotent.
std::string schema_fingerprint() {
  return E()
      .value(R"(
    WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = 'entitlement_sync'),
         c AS (SELECT oid FROM pg_class WHERE relnamespace = (SELECT oid FROM s))
    SELECT string_agg(x, ' ' ORDER BY x) FROM (
      SELECT 'namespace:' || oid || ':' || xmin FROM pg_namespace WHERE oid = (SELECT oid FROM s)
      UNION ALL SELECT 'class:' || oid || ':' || xmin FROM pg_class WHERE oid IN (SELECT oid FROM c)
      UNION ALL SELECT 'column:' || attrelid || '.' || attnum || ':' || xmin FROM pg_attribute
        WHERE attrelid IN (SELECT oid FROM c)
      UNION ALL SELECT 'function:' || oid || ':' || xmin FROM pg_proc WHERE pronamespace = (SELECT oid FROM s)
      UNION ALL SELECT 'type:' || oid || ':' || xmin FROM pg_type WHERE typnamespace = (SELECT oid FROM s)
      UNION ALL SELECT 'constraint:' || oid || ':' || xmin FROM pg_constraint
        WHERE connamespace = (SELECT oid FROM s)
      UNION ALL SELECT 'trigger:' || oid || ':' || xmin FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM c)
      UNION ALL SELECT 'rewrite:' || oid || ':' || xmin FROM pg_rewrite WHERE ev_class IN (SELECT oid FROM c)
      UNION ALL SELECT 'role:' || oid || ':' || xmin FROM pg_authid
      UNION ALL SELECT 'migration:' || version || ':' || name || ':' || applied_at || ':' || xmin
        FROM entitlement_sync.schema_migrations
    ) f(x))")
      .value_or("");
}

}  // namespace

BOOST_AUTO_TEST_CASE(migrate_is_idempotent) {
  const auto versions = E().count("SELECT count(*) FROM entitlement_sync.schema_migrations");
  BOOST_TEST_REQUIRE(versions >= 1);
  const auto before = schema_fingerprint();
  auto r = run_daemon(E().config, {"migrate"});
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("migrate: applied") == std::string::npos, r.output);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.schema_migrations") == versions);
  BOOST_TEST(schema_fingerprint() == before, "the second migrate changed the schema");
}

BOOST_AUTO_TEST_CASE(a_hundred_players_at_once_cost_one_token_request_and_few_handshakes) {
  // A fresh daemon process has an empty token cache: all syncs start together and must share one fetch.
  for (int i = 0; i < 100; ++i) {
    const std::string user = "crowd-" + std::to_string(i);
    E().emu.put_items(user, emulator_instance::make_items(user, 2));
    E().upload(user, E().emu.mint_key(user));
  }
  // Taken after the set-up: every control call above is a curl connection of its own.
  const auto tokens_before = E().emu.stat("tokenRequests");
  const auto handshakes_before = E().emu.stat("tlsHandshakes") + 1;  // + the stat call itself
  E().drain_ok();
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id LIKE 'crowd-%'") ==
             200);
  BOOST_TEST(E().emu.stat("tokenRequests") - tokens_before == 1);
  // Connections are pooled: at most one per concurrent sync (64 by default) plus the token request,
  // never one per request.
  BOOST_TEST(E().emu.stat("tlsHandshakes") - handshakes_before <= 65);
}

BOOST_AUTO_TEST_CASE(check_config_names_an_unknown_key) {
  temp_dir dir("esd-badcfg");
  auto cfg = write_daemon_config(dir.path(), E().pg.url(), E().emu, "[sync]\nconcurency = 4\n");
  auto r = run_daemon(cfg, {"check-config"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find("concurency") != std::string::npos, r.output);
  auto good = run_daemon(E().config, {"check-config"});
  BOOST_TEST(good.exit_code == 0, good.output);
}
