// Isolation in the claim: whatever bytes an upload holds, it fails alone, with its reason recorded, and every
// player queued behind it is synced. Forged keys are signed by the emulator (anyone can make one: the
// clientId is public) or put together by hand (the daemon cannot check the signature).
#define BOOST_TEST_MODULE claim_isolation
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <functional>
#include <random>

#include "harness/harness.hpp"
#include "store/store_id_key.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

namespace {

// A small concurrency, so that the bad uploads at the head of the queue fill whole claims.
struct file_env : shared_environment {
  file_env() : shared_environment("[sync]\nretry_base = 1s\nconcurrency = 4\n") {}
};
BOOST_TEST_GLOBAL_FIXTURE(file_env);

// A key with the given claims (JSON text), unsigned: the daemon reads claims without checking signatures.
std::string unsigned_key(const std::string& claims_json) {
  using esd::store::base64url_encode;
  return base64url_encode(R"({"alg":"RS256","typ":"JWT","x5t":"x"})") + "." + base64url_encode(claims_json) + "." +
         base64url_encode(std::string(64, 'S'));
}

// The claims of a good collections key, with one claim's value replaced by raw JSON text (which need not be
// JSON a parser accepts).
std::string claims_with(const std::string& name, const std::string& json_text) {
  const std::string prefix = "http://schemas.microsoft.com/marketplace/2015/08/claims/key/";
  boost::json::object claims{
      {prefix + "clientId", emulator_instance::client_id},
      {prefix + "payload", "cGF5bG9hZA=="},
      {prefix + "userId", "b3BhcXVl"},
      {prefix + "refreshUri", "https://collections.mp.microsoft.com/v6.0/b2b/keys/renew"},
      {"iat", unix_now()},
      {"iss", "https://collections.mp.microsoft.com/v6.0/keys"},
      {"aud", "https://collections.mp.microsoft.com/v6.0/keys"},
      {"exp", unix_now() + 30 * 86400},
      {"nbf", unix_now() - 3600}};
  const std::string key = name.size() > 4 ? prefix + name : name;
  claims[key] = "@value@";
  std::string text = boost::json::serialize(claims);
  return text.replace(text.find("\"@value@\""), 9, json_text);
}

// A player the Store knows, with a good key and n items.
void good_player(const std::string& user, int n) {
  E().emu.put_items(user, emulator_instance::make_items(user, n));
  E().upload(user, E().emu.mint_key(user));
}

void synced(const std::string& user, int items) {
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = " +
                       sql_quote(user)) == items,
             user);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = " +
                       sql_quote(user) + " AND last_synced_at IS NOT NULL AND last_error IS NULL") == 1,
             user);
}

// The player's events all ended failed, and support sees why (bounded); returns the reason.
std::string failed_with_reason(const std::string& user) {
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = " +
                       sql_quote(user) + " AND state <> 'failed'") == 0,
             user);
  BOOST_TEST(
      E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = " + sql_quote(user)) == 0,
      user);
  auto err =
      E().value("SELECT last_error FROM entitlement_sync.user_status WHERE user_id = " + sql_quote(user));
  BOOST_TEST_REQUIRE(err.has_value(), user);
  BOOST_TEST(!err->empty());
  BOOST_TEST(err->size() < 1000, user << ": " << *err);
  check_no_credentials(*err, user + "'s last_error");
  return *err;
}

}  // namespace

BOOST_AUTO_TEST_CASE(forged_key_times_fail_alone_and_the_players_behind_them_are_synced) {
  // Queued first, so every claim takes them first.
  E().upload("forged-iat",
             E().emu.mint_key("forged-iat", "collections", -1'000'000'000'000LL, unix_now() + 86400));
  E().upload("forged-exp",
             E().emu.mint_key("forged-exp", "collections", unix_now(), 9'000'000'000'000'000LL));
  E().upload("forged-exp-purchase", std::nullopt,
             E().emu.mint_key("forged-exp-purchase", "purchase", unix_now(), 9'000'000'000'000'000LL));
  for (int i = 0; i < 6; ++i) good_player("behind-forged-" + std::to_string(i), 3);

  E().drain_ok(120s);

  for (int i = 0; i < 6; ++i) synced("behind-forged-" + std::to_string(i), 3);
  const auto iat = failed_with_reason("forged-iat");
  BOOST_TEST(iat.find("iat claim") != std::string::npos, iat);
  const auto exp = failed_with_reason("forged-exp");
  BOOST_TEST(exp.find("exp claim") != std::string::npos, exp);
  const auto purchase = failed_with_reason("forged-exp-purchase");
  BOOST_TEST(purchase.find("purchase_key") != std::string::npos, purchase);
  BOOST_TEST(purchase.find("exp claim") != std::string::npos, purchase);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_keys WHERE user_id LIKE 'forged-%'") == 0);
}

BOOST_AUTO_TEST_CASE(a_row_the_database_refuses_fails_only_its_player) {
  // Stands for any value the checks let through and PostgreSQL refuses in the claim's batched statement.
  exec_sql(E().pg.url(), "ALTER TABLE entitlement_sync.user_keys ADD CONSTRAINT refuse_one_player "
                         "CHECK (user_id <> 'refused-by-database')");
  E().upload("refused-by-database", E().emu.mint_key("refused-by-database"));
  for (int i = 0; i < 5; ++i) good_player("behind-refused-" + std::to_string(i), 2);

  auto r = E().drain_ok(120s);
  exec_sql(E().pg.url(), "ALTER TABLE entitlement_sync.user_keys DROP CONSTRAINT refuse_one_player");

  for (int i = 0; i < 5; ++i) synced("behind-refused-" + std::to_string(i), 2);
  const auto why = failed_with_reason("refused-by-database");
  BOOST_TEST(why.find("could not be stored") != std::string::npos, why);
  BOOST_TEST(why.find("23514") != std::string::npos, why);
}

BOOST_AUTO_TEST_CASE(a_user_id_the_daemon_cannot_work_with_fails_with_a_reason) {
  const std::string control_chars = "ctl\x1b[31mplayer";
  E().upload(control_chars, E().emu.mint_key("ctl-player"));
  good_player("behind-bad-user-id", 2);
  E().drain_ok(120s);
  synced("behind-bad-user-id", 2);
  const auto why = failed_with_reason(control_chars);
  BOOST_TEST(why.find("user_id contains control characters") != std::string::npos, why);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_keys WHERE user_id = " +
                       sql_quote(control_chars)) == 0);
}

// Random and adversarial uploads interleaved with good players: every good player is synced, every bad one
// ends failed with a reason, and the daemon finishes the whole queue.
BOOST_AUTO_TEST_CASE(random_bad_uploads_never_hold_up_good_players) {
  // ESD_TEST_SEED=N replays a run that failed.
  const char* seed_text = std::getenv("ESD_TEST_SEED");
  const unsigned long long seed = seed_text ? std::stoull(seed_text) : 20261204;
  BOOST_TEST_MESSAGE("seed " << seed);
  std::mt19937_64 rng(seed);
  auto pick = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
  const long long now = unix_now();
  const std::vector<std::string> out_of_range_times = {
      std::to_string(pick(-9'000'000'000'000'000'000LL, -1)),
      std::to_string(pick(253'402'300'800LL, 9'000'000'000'000'000'000LL)),
      "9223372036854775807", "18446744073709551615", "-1e15", "1e300", "8.9e15"};

  // Each bad upload: a key (or keys) whose problem the claim must find.
  const std::vector<std::function<void(const std::string&)>> bad = {
      [&](const std::string& u) { E().upload(u, E().emu.mint_key(u, "collections", pick(-1'000'000'000'000'000LL, -1), now + 86400)); },
      [&](const std::string& u) { E().upload(u, E().emu.mint_key(u, "collections", now, pick(253'402'300'800LL, 9'000'000'000'000'000'000LL))); },
      [&](const std::string& u) { E().upload(u, E().emu.mint_key(u, "collections", now, now + pick(400, 4000) * 86400)); },
      [&](const std::string& u) { E().upload(u, E().emu.mint_key(u, "collections", now + pick(2, 400) * 86400, now + 86400)); },
      [&](const std::string& u) { E().upload(u, E().emu.mint_key(u, "purchase")); },  // wrong column
      [&](const std::string& u) { E().upload(u, std::nullopt, E().emu.mint_key(u, "collections")); },
      [&](const std::string& u) {
        const char* field[] = {"exp", "iat", "nbf"};
        E().upload(u, unsigned_key(claims_with(field[pick(0, 2)], out_of_range_times[pick(0, 6)])));
      },
      [&](const std::string& u) { E().upload(u, unsigned_key(claims_with("clientId", R"("a\u0000b")"))); },
      [&](const std::string& u) { E().upload(u, unsigned_key(claims_with("refreshUri", R"("https://x/\ud800")"))); },
      [&](const std::string& u) { E().upload(u, unsigned_key(claims_with("userId", "\"" + std::string(pick(600, 9000), 'u') + "\""))); },
      [&](const std::string& u) { E().upload(u, unsigned_key(claims_with("clientId", "[1,2]"))); },
      [&](const std::string& u) { E().upload(u, unsigned_key(claims_with("aud", R"("https://evil.example/keys")"))); },
      [&](const std::string& u) {  // not a JWT: random printable bytes
        std::string junk(pick(1, 3000), ' ');
        for (auto& ch : junk) ch = static_cast<char>(pick(0x21, 0x7e));
        E().upload(u, junk);
      },
      [&](const std::string& u) { E().upload(u, std::string(pick(17'000, 200'000), 'A') + ".e30.c2ln"); },
      [&](const std::string& u) { E().upload(u, unsigned_key(std::string(pick(1, 50), '['))); },
      [&](const std::string& u) { E().upload(u + "\x07", E().emu.mint_key(u)); },  // a control character
  };

  std::vector<std::string> good_users, bad_users;
  for (int i = 0; i < 60; ++i) {
    if (pick(0, 2) == 0) {
      const std::string user = "prop-good-" + std::to_string(i);
      good_player(user, static_cast<int>(pick(1, 4)));
      good_users.push_back(user);
    } else {
      const auto which = static_cast<std::size_t>(pick(0, static_cast<std::int64_t>(bad.size()) - 1));
      const std::string user = "prop-bad-" + std::to_string(i) + "-kind-" + std::to_string(which);
      bad[which](user);
      bad_users.push_back(which + 1 == bad.size() ? user + "\x07" : user);
    }
  }
  // A user id longer than the schema allows never enters the queue: the backend's INSERT says so at once.
  BOOST_CHECK_THROW(E().upload(std::string(300, 'g'), E().emu.mint_key("giant")), std::exception);

  E().drain_ok(300s);

  for (const auto& user : good_users)
    BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = " +
                         sql_quote(user) + " AND last_synced_at IS NOT NULL AND last_error IS NULL") == 1,
               user << " (seed " << seed << ")");
  for (const auto& user : bad_users) failed_with_reason(user);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id LIKE 'prop-%' "
                       "AND state NOT IN ('done', 'failed')") == 0);
}
