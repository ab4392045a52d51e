// A refused service token is never a verdict on players' keys: when the Store stops honouring the token
// the daemon holds (a rotated secret, a cache on the Store's side), every call fetches a fresh token and
// goes on, and no key is marked dead. Keys of many players refused at once are kept as a problem on the
// Store's side. An admin revives keys marked dead by mistake.
#define BOOST_TEST_MODULE token_refusal
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

namespace {

struct file_env : shared_environment {
  file_env() : shared_environment("[sync]\nretry_base = 1s\nretry_cap = 2s\npoll_interval = 1s\n") {}
};
BOOST_TEST_GLOBAL_FIXTURE(file_env);

// Events of players whose id starts with prefix, not yet finished.
long long unfinished(const std::string& prefix) {
  return E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id LIKE '" + prefix +
                   "%' AND state NOT IN ('done', 'failed')");
}

long long dead_keys(const std::string& prefix) {
  return E().count("SELECT count(*) FROM entitlement_sync.user_keys WHERE user_id LIKE '" + prefix +
                   "%' AND (collections_key_dead_at IS NOT NULL OR purchase_key_dead_at IS NOT NULL)");
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_revoked_service_token_is_replaced_and_no_key_is_marked_dead) {
  const std::vector<std::string> players = {"tr-0", "tr-1", "tr-2", "tr-3", "tr-4", "tr-5"};
  for (const auto& p : players) {
    E().emu.put_items(p, emulator_instance::make_items(p, 3));
    E().upload(p, E().emu.mint_key(p));
  }
  // A player with a purchase key: the subscriptions read goes through the purchase API.
  const std::string buyer = "tr-buyer";
  E().emu.put_items(buyer, emulator_instance::make_items(buyer, 2));
  E().emu.control("PUT", "/_emulator/players/" + buyer + "/subscriptions",
                  R"([{"id":"mdr:0:tr:1","productId":"CFQ7TTC0HC8Z","skuId":"0002","recurrenceState":"Active"}])");
  E().upload(buyer, E().emu.mint_key(buyer), E().emu.mint_key(buyer, "purchase"));

  temp_dir dir("esd-token-refusal");
  const auto cfg = write_daemon_config(dir.path(), E().pg.url(), E().emu,
                                       "[sync]\nretry_base = 1s\nretry_cap = 2s\npoll_interval = 1s\n"
                                       "[metrics]\nlisten = 127.0.0.1:0\n");
  auto daemon = start_daemon(cfg, dir.path() / "daemon.log");
  BOOST_TEST_REQUIRE(wait_for([] { return unfinished("tr-") == 0; }, 90s), daemon->log());
  BOOST_TEST_REQUIRE(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id LIKE 'tr-%' "
                               "AND last_synced_at IS NOT NULL AND last_error IS NULL") == 7,
                     daemon->log());

  // The Store stops honouring every token issued so far, the daemon's included.
  E().emu.control("POST", "/_emulator/tokens/revoke");
  const auto tokens_before = boost::json::parse(E().emu.control("GET", "/_emulator/tokens")).as_object();

  // Everyone syncs again, together with a player whose key is due for renewal: one claim, one wave of
  // requests carrying the revoked token.
  const std::string renewing = "tr-renew";
  E().emu.put_items(renewing, emulator_instance::make_items(renewing, 2));
  const auto renew_key =
      E().emu.mint_key(renewing, "collections", unix_now() - 15 * 86400, unix_now() + 15 * 86400);
  exec_sql(E().pg.url(), "INSERT INTO entitlement_sync.key_uploads (user_id, collections_key) VALUES ('" + renewing +
                             "', '" + renew_key + "'); SELECT entitlement_sync.request_resync(ARRAY['tr-0','tr-1',"
                             "'tr-2','tr-3','tr-4','tr-5','" + buyer + "'])");
  BOOST_TEST_REQUIRE(wait_for([] { return unfinished("tr-") == 0; }, 90s), daemon->log());

  // The Store did refuse the old token, and the daemon fetched new tokens for the refused requests
  // together (single-flight), not one for each of the eight players.
  const auto tokens_after = boost::json::parse(E().emu.control("GET", "/_emulator/tokens")).as_object();
  const auto refusals = tokens_after.at("revokedRefusals").to_number<long long>() -
                        tokens_before.at("revokedRefusals").to_number<long long>();
  const auto fetched = tokens_after.at("issued").to_number<long long>() - tokens_before.at("issued").to_number<long long>();
  BOOST_TEST(refusals >= 1);
  BOOST_TEST(fetched >= 1);
  BOOST_TEST(fetched < 8, fetched << " tokens fetched for " << refusals << " refused requests");
  BOOST_TEST_MESSAGE(fetched << " tokens fetched for " << refusals << " refused requests");
  // No key is dead, every sync worked with a fresh token, the renewal too.
  BOOST_TEST(dead_keys("tr-") == 0, daemon->log());
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id LIKE 'tr-%' AND "
                       "state = 'failed'") == 0);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id LIKE 'tr-%' "
                       "AND last_error IS NULL") == 8);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = '" + renewing +
                       "'") == 2);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_keys WHERE user_id = '" + renewing +
                       "' AND collections_key_renewed_at IS NOT NULL") == 1);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.users WHERE user_id = '" + buyer +
                       "' AND subscriptions_error IS NULL AND subscriptions_synced_at IS NOT NULL") == 1);
  const auto log = daemon->log();
  BOOST_TEST(log.find("the Store refused the service token") != std::string::npos, log);
  // The metric says so too.
  const auto at = log.find("metrics: listening");
  BOOST_TEST_REQUIRE(at != std::string::npos, log);
  const auto port_at = log.find("port=", at);
  BOOST_TEST_REQUIRE(port_at != std::string::npos, log);
  const auto port = log.substr(port_at + 5, log.find_first_not_of("0123456789", port_at + 5) - port_at - 5);
  const auto scrape = run_process({"curl", "-sS", "--max-time", "10", "http://127.0.0.1:" + port + "/metrics"}, 20s);
  BOOST_TEST_REQUIRE(scrape.exit_code == 0, scrape.output);
  BOOST_TEST(scrape.output.find("\nentitlement_syncd_service_token_refused_total ") != std::string::npos, scrape.output);
  BOOST_TEST(scrape.output.find("\nentitlement_syncd_service_token_refused_total 0\n") == std::string::npos, scrape.output);
  check_no_credentials(log, "the daemon");
  daemon->signal(SIGTERM);
  BOOST_TEST((daemon->wait(30s) == std::optional<int>(0)));
}

BOOST_AUTO_TEST_CASE(keys_of_many_players_refused_at_once_are_kept) {
  // Keys signed by another Store: refused with a fresh token too, like keys the Store stopped honouring.
  emulator_instance other;
  const int players = 16;
  for (int i = 0; i < players; ++i) {
    const std::string p = "burst-" + std::to_string(i);
    E().emu.put_items(p, emulator_instance::make_items(p, 1));
    E().upload(p, other.mint_key(p));
  }
  auto dir = temp_dir("esd-burst");
  // Only what is due at once: the held syncs are retried later, outside this run.
  const auto cfg = write_daemon_config(dir.path(), E().pg.url(), E().emu,
                                       "[sync]\ndrain_grace = 0s\n[keys]\nrefusal_burst_players = 4\n");
  auto r = run_daemon(cfg, {"run", "--drain"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  check_no_credentials(r.output, "the draining daemon");

  // At most the threshold's worth ([keys] refusal_burst_players) are marked dead; the rest are kept and
  // wait for a retry, not failed.
  const auto dead = dead_keys("burst-");
  BOOST_TEST(dead >= 1, r.output);  // few refusals stand: those keys are dead
  BOOST_TEST(dead <= 4, r.output);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id LIKE 'burst-%' "
                       "AND state = 'pending' AND attempts = 1") == players - dead);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id LIKE 'burst-%' "
                       "AND last_error LIKE '%problem on the Store''s side%'") == players - dead);
  BOOST_TEST(r.output.find("taken as a problem on the Store's side") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(an_admin_revives_keys_marked_dead_since_a_time) {
  // Two players whose keys are marked dead (as if the Store had refused them for a reason of its own),
  // one of them long ago.
  const std::string recent = "revive-recent", old = "revive-old", other_player = "revive-untouched";
  for (const auto& p : {recent, old, other_player}) {
    E().emu.put_items(p, emulator_instance::make_items(p, 2));
    E().upload(p, E().emu.mint_key(p));
  }
  auto r = E().drain();
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  exec_sql(E().pg.url(), "UPDATE entitlement_sync.user_keys SET collections_key_dead_at = now() - interval '1 minute', "
                         "collections_key_dead_reason = 'refused' WHERE user_id IN ('" + recent + "', '" +
                         other_player + "')");
  exec_sql(E().pg.url(), "UPDATE entitlement_sync.user_keys SET collections_key_dead_at = now() - interval '2 days', "
                         "collections_key_dead_reason = 'refused' WHERE user_id = '" + old + "'");
  const auto queries_before = E().emu.stat("queriesByUser", recent);

  // Only the admin role may call it.
  BOOST_TEST(E().count("SELECT count(*) FROM information_schema.routine_privileges WHERE routine_schema = "
                       "'entitlement_sync' "
                       "AND routine_name = 'revive_keys' AND grantee = 'PUBLIC'") == 0);
  BOOST_TEST(E().count("SELECT count(*) FROM information_schema.routine_privileges WHERE routine_schema = "
                       "'entitlement_sync' "
                       "AND routine_name = 'revive_keys' AND grantee = 'entitlement_admin'") == 1);

  // Revive those marked dead within the last hour, of the two named players: one.
  BOOST_TEST(E().count("SELECT entitlement_sync.revive_keys(now() - interval '1 hour', ARRAY['" + recent +
                       "', '" + old + "'])") == 1);
  BOOST_TEST(dead_keys(recent) == 0);
  BOOST_TEST(dead_keys(old) == 1);
  BOOST_TEST(dead_keys(other_player) == 1);
  // A resync was queued, and syncs with the revived key.
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = '" + recent +
                       "' AND kind = 'resync' AND state = 'pending'") == 1);
  r = E().drain();
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(E().emu.stat("queriesByUser", recent) > queries_before);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = '" + recent +
                       "' AND kind = 'resync' AND state = 'done'") == 1);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = '" + recent +
                       "' AND last_error IS NULL") == 1);
  // Without a list of players: everyone marked dead since the time.
  const auto dead_lately = E().count(
      "SELECT count(*) FROM entitlement_sync.user_keys WHERE "
      "collections_key_dead_at >= now() - interval '1 hour' OR "
      "purchase_key_dead_at >= now() - interval '1 hour'");
  BOOST_TEST(dead_lately >= 1);
  BOOST_TEST(E().count("SELECT entitlement_sync.revive_keys(now() - interval '1 hour')") == dead_lately);
  BOOST_TEST(dead_keys(other_player) == 0);
  BOOST_TEST(dead_keys(old) == 1);
}
