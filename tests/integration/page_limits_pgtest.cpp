// The page loops through the real daemon, PostgreSQL and the emulator: a Store whose answers across pages
// outgrow [store] max_collection_bytes, and one whose continuation tokens lead in a circle (A -> B -> A),
// for the collections query and the subscriptions (recurrences) query. Each ends that player's sync with a
// reason in user_status, while the good players synced beside it in the same run get everything.
#define BOOST_TEST_MODULE page_limits
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* query_path = "/v6.0/collections/query";
constexpr const char* recurrences_path = "/v8.0/b2b/recurrences/query";
constexpr int good_items = 30;

// A daemon that holds at most 4 MB of Store answers per page loop, and does not wait for retries in
// `run --drain` (a transient failure stays pending with its reason).
struct file_env : shared_environment {
  file_env() : shared_environment("[store]\nmax_collection_bytes = 4MB\n[sync]\ndrain_grace = 0s\n") {}
};

void add_fault(const std::string& path, const std::string& user, const std::string& mode, int count,
               long long bytes = 0) {
  boost::json::object f{{"path", path}, {"mode", mode}, {"count", count}, {"userId", user}};
  if (bytes) f["bytes"] = bytes;
  E().emu.add_fault(boost::json::serialize(f));
}

// Hits left of the fault aimed at this player (0 when it is used up and gone).
long long fault_hits_left(const std::string& user) {
  const auto v = boost::json::parse(E().emu.control("GET", "/_emulator/faults"));
  for (const auto& f : v.at("faults").as_array())
    if (f.at("userId").is_string() && f.at("userId").as_string() == user) return f.at("count").to_number<long long>();
  return 0;
}

// Players "<prefix>-0".."<prefix>-(n-1)" with good_items items each, uploaded.
std::vector<std::string> good_players(const std::string& prefix, int n, bool purchase_key = false) {
  std::vector<std::string> users;
  for (int i = 0; i < n; ++i) {
    const std::string user = prefix + "-" + std::to_string(i);
    E().emu.put_items(user, emulator_instance::make_items(user, good_items));
    E().upload(user, E().emu.mint_key(user, "collections"),
               purchase_key ? std::optional<std::string>(E().emu.mint_key(user, "purchase")) : std::nullopt);
    users.push_back(user);
  }
  return users;
}

void check_synced(const std::vector<std::string>& users) {
  for (const auto& user : users) {
    BOOST_TEST_CONTEXT(user) {
      BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = " +
                           sql_quote(user)) == good_items);
      BOOST_TEST(!E().value("SELECT last_error FROM entitlement_sync.user_status WHERE user_id = " +
                            sql_quote(user)));
      BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE state = 'done' "
                           "AND user_id = " +
                           sql_quote(user)) == 1);
    }
  }
}

std::string last_error(const std::string& user) {
  return E()
      .value("SELECT last_error FROM entitlement_sync.user_status WHERE user_id = " + sql_quote(user))
      .value_or("(none)");
}

std::string event_state(const std::string& user) {
  return E()
      .value("SELECT state FROM entitlement_sync.key_uploads WHERE user_id = " + sql_quote(user))
      .value_or("(none)");
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(file_env);

BOOST_AUTO_TEST_CASE(a_collection_over_max_collection_bytes_fails_alone_with_what_to_raise) {
  const auto good = good_players("cap-good", 6);
  // Pages of 1.5 MB: four of them pass the 4 MB cap, though none comes near the per-answer limit alone.
  const std::string big = "cap-big", fits = "cap-fits";
  for (const auto& user : {big, fits}) E().upload(user, E().emu.mint_key(user, "collections"));
  add_fault(query_path, big, "huge", 4, 1'500'000);
  add_fault(query_path, fits, "huge", 2, 1'500'000);

  const auto r = E().drain();
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  check_synced(good);

  // Over the cap: failed for good (the same pages would come again), the reason names the key to raise,
  // nothing of the collection written, and the key is not held against the player.
  BOOST_TEST(event_state(big) == "failed");
  const std::string reason = last_error(big);
  BOOST_TEST(reason.find("more than 4 MB after 3 pages") != std::string::npos, reason);
  BOOST_TEST(reason.find("raise [store] max_collection_bytes") != std::string::npos, reason);
  BOOST_TEST(
      E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = " + sql_quote(big)) == 0);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = " + sql_quote(big) +
                       " AND collections_key_expires_at IS NOT NULL") == 1);
  BOOST_TEST(fault_hits_left(big) == 1);  // the fourth page was never asked for

  // Two such pages (3 MB) fit: the cap is on the whole read, and a big collection within it is synced.
  BOOST_TEST(event_state(fits) == "done", last_error(fits));
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = " +
                       sql_quote(fits)) > 2000);
}

BOOST_AUTO_TEST_CASE(a_continuation_cycle_in_the_collection_ends_the_sync_at_the_first_repeat) {
  const auto good = good_players("cycle-good", 6);
  const std::string looping = "cycle-loop";
  E().upload(looping, E().emu.mint_key(looping, "collections"));
  add_fault(query_path, looping, "cycle", 50);  // no token -> A, A -> B, B -> A, ...

  const auto r = E().drain();
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  check_synced(good);

  // Three pages asked for (none, A, B), then A again is recognised: the Store's doing, so the event waits
  // for a retry with the reason recorded, and the key stays good.
  BOOST_TEST(fault_hits_left(looping) == 47);
  BOOST_TEST(event_state(looping) == "pending");
  const std::string reason = last_error(looping);
  BOOST_TEST(reason.find("the collection: the Store led back to a page it had already given") != std::string::npos,
             reason);
  BOOST_TEST(reason.find("emulator-cycle") == std::string::npos, reason);  // tokens are not echoed
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = " +
                       sql_quote(looping) + " AND collections_key_expires_at IS NOT NULL") == 1);
}

BOOST_AUTO_TEST_CASE(subscription_pages_over_the_cap_or_in_a_cycle_fail_the_read_not_the_sync) {
  const auto good = good_players("subs-good", 4, true);
  const std::string looping = "subs-loop", big = "subs-big";
  for (const auto& user : {looping, big}) {
    E().emu.put_items(user, emulator_instance::make_items(user, good_items));
    E().upload(user, E().emu.mint_key(user, "collections"), E().emu.mint_key(user, "purchase"));
  }
  add_fault(recurrences_path, looping, "cycle", 50);
  add_fault(recurrences_path, big, "huge", 4, 1'500'000);

  const auto r = E().drain();
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  check_synced(good);
  for (const auto& user : good)
    BOOST_TEST(!E().value("SELECT subscriptions_error FROM entitlement_sync.user_status WHERE user_id = " +
                          sql_quote(user)));

  // The entitlements are synced either way; the subscriptions read records why it stopped.
  check_synced({looping, big});
  const auto subs_error = [](const std::string& user) {
    return E()
        .value("SELECT subscriptions_error FROM entitlement_sync.user_status WHERE user_id = " +
               sql_quote(user))
        .value_or("(none)");
  };
  BOOST_TEST(fault_hits_left(looping) == 47);
  BOOST_TEST(subs_error(looping).find("subscriptions: the Store led back to a page it had already given") !=
                 std::string::npos,
             subs_error(looping));
  BOOST_TEST(fault_hits_left(big) == 1);
  BOOST_TEST(subs_error(big).find("subscriptions: the Store's answers came to more than 4 MB after 3 pages") !=
                 std::string::npos,
             subs_error(big));
}
