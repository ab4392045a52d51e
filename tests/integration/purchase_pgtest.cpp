// The purchase side through the real daemon, PostgreSQL and the emulator: free-product grants carried out
// exactly once (also when the Store's answer is lost), subscriptions in each state with paging and
// disappearance, a persistent subscriptions failure that is not retried forever, and a consume report
// replayed after a crash that the Store counts once.
#define BOOST_TEST_MODULE purchase
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <functional>
#include <thread>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

namespace {

// Short backoff so retries come within one drain; a short lease for the crash test.
struct file_env : shared_environment {
  file_env()
      : shared_environment(
            "[sync]\nretry_base = 1s\nretry_cap = 2s\nmax_attempts = 3\nlease = 5s\ndrain_grace = 20s\n") {
    E().emu.put_catalog(R"([
      {"productId":"9NFREEGIFT01","skuId":"0010","availabilityId":"9AVAILGIFT01","productType":"Durable","title":"Login reward"},
      {"productId":"9NFREEGEMS01","skuId":"0010","availabilityId":"9AVAILGEMS01","productType":"UnmanagedConsumable","title":"Gems"}
    ])");
  }
};
BOOST_TEST_GLOBAL_FIXTURE(file_env);

// A player with both keys uploaded (and a first sync done).
void player_with_keys(const std::string& user, const std::string& items_json = "[]") {
  E().emu.put_items(user, items_json);
  E().upload(user, E().emu.mint_key(user, "collections"), E().emu.mint_key(user, "purchase"));
  E().drain_ok();
}

long long grant_request(const std::string& user, const std::string& product, const std::string& availability) {
  return std::stoll(
      *E().value("INSERT INTO entitlement_sync.grant_requests (user_id, product_id, sku_id, availability_id) "
                 "VALUES (" +
                 sql_quote(user) + ", " + sql_quote(product) + ", '0010', " + sql_quote(availability) +
                 ") RETURNING request_id"));
}

std::string grant_field(long long id, const std::string& column) {
  return E()
      .value("SELECT " + column +
             "::text FROM entitlement_sync.grant_requests WHERE request_id = " + std::to_string(id))
      .value_or("(null)");
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_grant_shows_up_in_entitlements) {
  const std::string user = "grant-player";
  player_with_keys(user);
  const auto performed = E().emu.stat("grantsPerformed");
  const auto id = grant_request(user, "9NFREEGIFT01", "9AVAILGIFT01");
  const auto order_id = grant_field(id, "order_id");
  BOOST_TEST(order_id.size() == 36u);
  E().drain_ok();
  BOOST_TEST(grant_field(id, "state") == "done");
  BOOST_TEST(grant_field(id, "order_state") == "Purchased");
  BOOST_TEST(grant_field(id, "error") == "(null)");
  BOOST_TEST(grant_field(id, "completed_at") != "(null)");
  BOOST_TEST(grant_field(id, "attempts") == "1");
  BOOST_TEST(grant_field(id, "order_id") == order_id);
  BOOST_TEST(E().emu.stat("grantsPerformed") == performed + 1);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = " +
                       sql_quote(user) + " AND product_id = '9NFREEGIFT01' AND status = 'Active'") == 1);
  // The order id is the Store's idempotency key: it cannot change.
  auto r = run_process({"psql", "-X", "-v", "ON_ERROR_STOP=1", E().pg.url(), "-c",
                        "UPDATE entitlement_sync.grant_requests SET order_id = gen_random_uuid() WHERE request_id = " +
                            std::to_string(id)},
                       30s);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("cannot change") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(a_grant_whose_answer_is_lost_is_granted_once) {
  const std::string user = "grant-lost-answer";
  player_with_keys(user);
  const auto performed = E().emu.stat("grantsPerformed");
  const auto replays = E().emu.stat("grantReplays");
  const auto requests = E().emu.stat("grantRequests");
  // The Store performs the grant, then the connection drops before the answer.
  E().emu.add_fault(R"({"path":"/v6.0/purchases/grant","count":1,"mode":"drop_after","userId":")" + user +
                    R"("})");
  const auto id = grant_request(user, "9NFREEGEMS01", "9AVAILGEMS01");
  E().drain_ok();
  BOOST_TEST(grant_field(id, "state") == "done");
  // Sent at least twice (the HTTP client may resend on the dropped connection within one attempt, or the
  // attempt ends and a retry follows): performed once, the rest answered from the stored order.
  BOOST_TEST(E().emu.stat("grantRequests") >= requests + 2);
  BOOST_TEST(std::stoi(grant_field(id, "attempts")) <= 2);
  BOOST_TEST(E().emu.stat("grantsPerformed") == performed + 1);
  BOOST_TEST(E().emu.stat("grantReplays") >= replays + 1);
  BOOST_TEST(
      (E().value("SELECT quantity::text FROM entitlement_sync.entitlements WHERE user_id = " +
                 sql_quote(user) + " AND product_id = '9NFREEGEMS01'") == std::optional<std::string>("1")));
}

BOOST_AUTO_TEST_CASE(grants_that_cannot_succeed_end_failed_with_a_clear_error) {
  // No purchase key at all.
  const std::string nokey = "grant-no-purchase-key";
  E().emu.put_items(nokey, "[]");
  E().upload(nokey, E().emu.mint_key(nokey, "collections"));
  E().drain_ok();
  const auto a = grant_request(nokey, "9NFREEGIFT01", "9AVAILGIFT01");
  // An availability the Store does not know: 400 InvalidParameter, not retried.
  const std::string user = "grant-bad-availability";
  player_with_keys(user);
  const auto b = grant_request(user, "9NFREEGIFT01", "9NOSUCHAVAIL");
  // A purchase key the Store refuses (signed by another Store): dead, not retried.
  const std::string dead = "grant-dead-purchase-key";
  E().emu.put_items(dead, "[]");
  emulator_instance other;
  E().upload(dead, E().emu.mint_key(dead, "collections"), other.mint_key(dead, "purchase"));
  const auto c = grant_request(dead, "9NFREEGIFT01", "9AVAILGIFT01");
  E().drain_ok();

  BOOST_TEST(grant_field(a, "state") == "failed");
  BOOST_TEST(grant_field(a, "error").find("no purchase key is stored") != std::string::npos, grant_field(a, "error"));
  BOOST_TEST(grant_field(b, "state") == "failed");
  BOOST_TEST(grant_field(b, "attempts") == "1");
  BOOST_TEST(grant_field(b, "error").find("InvalidParameter") != std::string::npos, grant_field(b, "error"));
  BOOST_TEST(grant_field(c, "state") == "failed");
  BOOST_TEST(grant_field(c, "attempts") == "1");
  BOOST_TEST(grant_field(c, "error").find("AuthenticationTokenInvalid") != std::string::npos, grant_field(c, "error"));
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_keys WHERE user_id = " + sql_quote(dead) +
                       " AND purchase_key_dead_at IS NOT NULL AND collections_key_dead_at IS NULL") == 1);
  // The players' collections still synced.
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id IN (" +
                       sql_quote(nokey) + ", " + sql_quote(user) +
                       ") AND last_error IS NULL AND last_synced_at IS NOT NULL") == 2);
}

BOOST_AUTO_TEST_CASE(subscriptions_in_each_state_with_paging_and_disappearance) {
  const std::string user = "subs-player";
  E().emu.control("PUT", "/_emulator/players/" + user + "/subscriptions", R"([
    {"id":"mdr:0:aaaa:1","productId":"CFQ7TTC0HC8Z","skuId":"0002","recurrenceState":"Active","autoRenew":true,
     "isTrial":false,"startTime":"2026-11-01T00:00:00.0000000+00:00","expirationTime":"2026-12-01T00:00:00.0000000+00:00",
     "expirationTimeWithGrace":"2026-12-15T00:00:00.0000000+00:00"},
    {"id":"mdr:0:aaaa:2","productId":"CFQ7TTC0HC8Z","skuId":"0002","recurrenceState":"Canceled","autoRenew":false,
     "cancellationDate":"2026-10-20T08:30:00.1234567+00:00"},
    {"id":"mdr:0:aaaa:3","productId":"CFQ7TTC0HC90","skuId":"0001","recurrenceState":"Active","isTrial":true},
    {"id":"mdr:0:aaaa:4","productId":"CFQ7TTC0HC91","skuId":"0001","recurrenceState":"Inactive","autoRenew":false},
    {"id":"mdr:0:aaaa:5","productId":"CFQ7TTC0HC92","skuId":"0001","recurrenceState":"InDunning"}
  ])");
  const auto pages_before = E().emu.stat("requestsByPath", "/v8.0/b2b/recurrences/query");
  player_with_keys(user);
  // Five subscriptions at two per page: three pages.
  BOOST_TEST(E().emu.stat("requestsByPath", "/v8.0/b2b/recurrences/query") == pages_before + 3);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.subscriptions WHERE user_id = " +
                       sql_quote(user) + " AND gone_at IS NULL") == 5);
  auto row = [&](const std::string& id, const std::string& col) {
    return E()
        .value("SELECT " + col + "::text FROM entitlement_sync.subscriptions WHERE user_id = " +
               sql_quote(user) + " AND recurrence_id = " + sql_quote(id))
        .value_or("(null)");
  };
  BOOST_TEST(row("mdr:0:aaaa:1", "state") == "Active");
  BOOST_TEST(row("mdr:0:aaaa:1", "auto_renew") == "true");
  BOOST_TEST(row("mdr:0:aaaa:1", "is_trial") == "false");
  BOOST_TEST(row("mdr:0:aaaa:1", "expiration_time") == "2026-12-01 00:00:00+00");
  BOOST_TEST(row("mdr:0:aaaa:1", "expiration_time_with_grace") == "2026-12-15 00:00:00+00");
  BOOST_TEST(row("mdr:0:aaaa:1", "product_id") == "CFQ7TTC0HC8Z");
  BOOST_TEST(row("mdr:0:aaaa:1", "sku_id") == "0002");
  BOOST_TEST(row("mdr:0:aaaa:2", "state") == "Canceled");
  BOOST_TEST(row("mdr:0:aaaa:2", "cancellation_date") == "2026-10-20 08:30:00.123456+00");  // 7th digit truncated
  BOOST_TEST(row("mdr:0:aaaa:3", "is_trial") == "true");
  BOOST_TEST(row("mdr:0:aaaa:4", "state") == "Inactive");
  BOOST_TEST(row("mdr:0:aaaa:5", "state") == "InDunning");
  BOOST_TEST(row("mdr:0:aaaa:1", "last_modified") != "(null)");
  BOOST_TEST(
      E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = " + sql_quote(user) +
                " AND subscriptions_synced_at IS NOT NULL AND subscriptions_error IS NULL") == 1);

  // One goes away, one changes: the gone one is marked, not deleted and not silently kept.
  E().emu.control("PUT", "/_emulator/players/" + user + "/subscriptions", R"([
    {"id":"mdr:0:aaaa:1","productId":"CFQ7TTC0HC8Z","skuId":"0002","recurrenceState":"Canceled","autoRenew":false,
     "cancellationDate":"2026-11-20T00:00:00.0000000+00:00"},
    {"id":"mdr:0:aaaa:2","productId":"CFQ7TTC0HC8Z","skuId":"0002","recurrenceState":"Canceled"},
    {"id":"mdr:0:aaaa:3","productId":"CFQ7TTC0HC90","skuId":"0001","recurrenceState":"Active","isTrial":true},
    {"id":"mdr:0:aaaa:5","productId":"CFQ7TTC0HC92","skuId":"0001","recurrenceState":"InDunning"}
  ])");
  E().exec_sql_resync(user);
  E().drain_ok();
  BOOST_TEST(row("mdr:0:aaaa:1", "state") == "Canceled");
  BOOST_TEST(row("mdr:0:aaaa:1", "cancellation_date") == "2026-11-20 00:00:00+00");
  BOOST_TEST(row("mdr:0:aaaa:4", "gone_at") != "(null)");
  BOOST_TEST(row("mdr:0:aaaa:4", "state") == "Inactive");  // kept as last seen
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.subscriptions WHERE user_id = " +
                       sql_quote(user) + " AND gone_at IS NULL") == 4);
}

BOOST_AUTO_TEST_CASE(a_persistent_500_for_subscriptions_is_not_retried_forever) {
  const std::string user = "subs-always-500";
  E().emu.put_items(user, emulator_instance::make_items("s500", 2));
  E().emu.add_fault(R"({"path":"/v8.0/b2b/recurrences/query","count":1000,"status":500,"userId":")" + user +
                    R"("})");
  const auto before = E().emu.stat("requestsByPath", "/v8.0/b2b/recurrences/query");
  E().upload(user, E().emu.mint_key(user, "collections"), E().emu.mint_key(user, "purchase"));
  E().drain_ok();
  // max_attempts = 3 reads in a row, then no more until the next sync of the player.
  BOOST_TEST(E().emu.stat("requestsByPath", "/v8.0/b2b/recurrences/query") == before + 3);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = " +
                       sql_quote(user)) == 2);
  auto err = E().value("SELECT subscriptions_error FROM entitlement_sync.user_status WHERE user_id = " +
                       sql_quote(user));
  BOOST_TEST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("HTTP 500") != std::string::npos, *err);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = " +
                       sql_quote(user) + " AND last_error IS NULL AND pending = 0") == 1);
  E().emu.control("DELETE", "/_emulator/faults");
}

BOOST_AUTO_TEST_CASE(a_consume_replayed_after_a_crash_is_counted_once) {
  const std::string user = "consume-crash";
  player_with_keys(user, R"([{"itemId":"gems-item-1","productId":"9NFREEGEMS01","skuId":"0010",
                              "productType":"UnmanagedConsumable","status":"Active","quantity":1}])");
  BOOST_TEST_REQUIRE(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = " +
                               sql_quote(user) + " AND item_id = 'gems-item-1' AND quantity = 1") == 1);
  const auto performed = E().emu.stat("consumesPerformed");
  const auto replays = E().emu.stat("consumeReplays");
  const auto id =
      std::stoll(*E().value("INSERT INTO entitlement_sync.consume_requests (user_id, product_id) VALUES (" +
                            sql_quote(user) + ", '9NFREEGEMS01') RETURNING request_id"));
  const std::string tracking =
      *E().value("SELECT tracking_id::text FROM entitlement_sync.consume_requests WHERE request_id = " +
                 std::to_string(id));

  // The Store acts at once but answers late: kill the daemon in between, once the Store has consumed.
  E().emu.control("POST", "/_emulator/settings", R"({"latencyMs":3000})");
  auto daemon = start_daemon(E().config, E().work.path() / "consume-crash.log");
  const bool consumed = wait_for([&] { return E().emu.stat("consumesPerformed") == performed + 1; }, 30s);
  daemon->signal(SIGKILL);
  daemon->wait(10s);
  E().emu.control("POST", "/_emulator/settings", R"({"latencyMs":0})");
  BOOST_TEST_REQUIRE(consumed);
  BOOST_TEST((E().value("SELECT state FROM entitlement_sync.consume_requests WHERE request_id = " +
                        std::to_string(id)) == std::optional<std::string>("pending")));
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = " +
                       sql_quote(user) + " AND state = 'running'") == 1);
  std::this_thread::sleep_for(5500ms);  // [sync] lease

  // A new daemon takes the player up after the lease; the same tracking id is sent again.
  E().drain_ok();
  BOOST_TEST((E().value("SELECT state FROM entitlement_sync.consume_requests WHERE request_id = " +
                        std::to_string(id)) == std::optional<std::string>("done")));
  BOOST_TEST(
      (E().value("SELECT tracking_id::text FROM entitlement_sync.consume_requests WHERE request_id = " +
                 std::to_string(id)) == std::optional<std::string>(tracking)));
  BOOST_TEST((E().value("SELECT consumed_item_id FROM entitlement_sync.consume_requests WHERE request_id = " +
                        std::to_string(id)) == std::optional<std::string>("gems-item-1")));
  BOOST_TEST(E().emu.stat("consumesPerformed") == performed + 1);
  BOOST_TEST(E().emu.stat("consumeReplays") >= replays + 1);
  // The entitlement row shows the fulfilled consumable.
  BOOST_TEST(
      (E().value("SELECT quantity::text FROM entitlement_sync.entitlements WHERE user_id = " +
                 sql_quote(user) + " AND item_id = 'gems-item-1'") == std::optional<std::string>("0")));
}

BOOST_AUTO_TEST_CASE(a_consume_of_something_not_owned_fails_and_others_go_on) {
  const std::string user = "consume-not-owned";
  player_with_keys(user, R"([{"itemId":"gems-item-2","productId":"9NFREEGEMS01","skuId":"0010",
                              "productType":"UnmanagedConsumable","status":"Active","quantity":1}])");
  const auto bad =
      std::stoll(*E().value("INSERT INTO entitlement_sync.consume_requests (user_id, product_id) VALUES (" +
                            sql_quote(user) + ", '9NNOTOWNED01') RETURNING request_id"));
  const auto good =
      std::stoll(*E().value("INSERT INTO entitlement_sync.consume_requests (user_id, item_id) VALUES (" +
                            sql_quote(user) + ", 'gems-item-2') RETURNING request_id"));
  E().drain_ok();
  auto state = [](long long id) {
    return *E().value(
        "SELECT state || ': ' || coalesce(error, '') FROM entitlement_sync.consume_requests WHERE request_id "
        "= " +
        std::to_string(id));
  };
  BOOST_TEST(state(bad).rfind("failed: ", 0) == 0u, state(bad));
  BOOST_TEST(state(bad).find("9NNOTOWNED01") != std::string::npos, state(bad));
  BOOST_TEST(state(good) == "done: ", state(good));
  BOOST_TEST(
      E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = " + sql_quote(user) +
                " AND consumes_pending = 0 AND grants_pending = 0 AND last_error IS NULL") == 1);
}

BOOST_AUTO_TEST_CASE(subscriptions_off_reads_none) {
  const std::string user = "subs-off";
  E().emu.control("PUT", "/_emulator/players/" + user + "/subscriptions",
                  R"([{"id":"mdr:0:bbbb:1","productId":"CFQ7TTC0HC8Z","skuId":"0002","recurrenceState":"Active"}])");
  E().emu.put_items(user, emulator_instance::make_items("soff", 2));
  temp_dir dir("esd-subs-off");
  const auto config = write_daemon_config(dir.path(), E().pg.url(), E().emu, "[store]\nsubscriptions = off\n");
  const auto before = E().emu.stat("recurrenceQueries");
  E().upload(user, E().emu.mint_key(user, "collections"), E().emu.mint_key(user, "purchase"));
  auto r = run_daemon(config, {"run", "--drain"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(E().emu.stat("recurrenceQueries") == before);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = " +
                       sql_quote(user)) == 2);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.subscriptions WHERE user_id = " +
                       sql_quote(user)) == 0);
  BOOST_TEST(
      E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = " + sql_quote(user) +
                " AND subscriptions_synced_at IS NULL AND subscriptions_error IS NULL") == 1);
}
