#define BOOST_TEST_MODULE uploaded_key_check
#include "store/uploaded_key_check.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <random>

#include "fixture_file.hpp"

namespace json = boost::json;
using namespace esd::store;

namespace {

constexpr std::int64_t now = 1'800'000'000;  // 2027-01-15
constexpr std::int64_t day = 86400;
const std::string client = "11111111-1111-1111-1111-111111111111";
const std::string prefix = "http://schemas.microsoft.com/marketplace/2015/08/claims/key/";

std::string key_of(const std::string& claims_json) {
  return base64url_encode(esd::test::fixture("user_store_id_jwt_header_example_gdk.json")) + "." +
         base64url_encode(claims_json) + "." + base64url_encode(std::string(64, 'S'));
}

json::object good_claims() {
  return {{prefix + "clientId", client},
          {prefix + "payload", "cGF5bG9hZA=="},
          {prefix + "userId", "b3BhcXVl"},
          {prefix + "refreshUri", "https://collections.mp.microsoft.com/v6.0/b2b/keys/renew"},
          {"iat", now - day},
          {"iss", "https://collections.mp.microsoft.com/v6.0/keys"},
          {"aud", "https://collections.mp.microsoft.com/v6.0/keys"},
          {"exp", now + 89 * day},
          {"nbf", now - day - 3600}};
}

// The claims with one value replaced by raw JSON text (which need not be JSON a parser accepts).
std::string with(const std::string& name, const std::string& json_text) {
  auto claims = good_claims();
  claims[name.size() > 4 ? prefix + name : name] = "@value@";
  std::string text = json::serialize(claims);
  return text.replace(text.find("\"@value@\""), 9, json_text);
}

bool printable_ascii(const std::string& s) {
  for (char ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e) return false;
  return true;
}

// Checks the key is refused cleanly, and returns the problem.
std::string problem_of(const std::string& key, key_kind kind = key_kind::collections) {
  uploaded_key_check r;
  BOOST_REQUIRE_NO_THROW(r = check_uploaded_key(key, kind, now, client));
  BOOST_TEST(!r);
  BOOST_TEST(printable_ascii(r.problem), r.problem);
  BOOST_TEST(r.problem.size() <= 400u, r.problem);
  // No run of 16+ characters of the key in the problem.
  for (std::size_t i = 0; i + 16 <= key.size(); i += 8)
    BOOST_TEST(r.problem.find(key.substr(i, 16)) == std::string::npos, "quotes the key: " << r.problem);
  return r.problem;
}

bool mentions(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(a_good_key_is_kept_with_its_times) {
  auto r = check_uploaded_key(key_of(json::serialize(good_claims())), key_kind::collections, now, client);
  BOOST_TEST_REQUIRE(bool(r), r.problem);
  BOOST_TEST(r.issued_at.micros == (now - day) * 1'000'000);
  BOOST_TEST(r.expires_at.micros == (now + 89 * day) * 1'000'000);
  // No client id configured: any clientId is taken.
  BOOST_TEST(bool(check_uploaded_key(key_of(with("clientId", "\"other\"")), key_kind::collections, now, "")));
}

BOOST_AUTO_TEST_CASE(times_outside_the_database_range_name_the_claim) {
  BOOST_TEST(mentions(problem_of(key_of(with("iat", "-1000000000000"))), "iat claim (-1000000000000)"));
  BOOST_TEST(mentions(problem_of(key_of(with("exp", "9000000000000000"))), "exp claim (9000000000000000)"));
  BOOST_TEST(mentions(problem_of(key_of(with("exp", "8.9e15"))), "exp claim"));
  BOOST_TEST(mentions(problem_of(key_of(with("nbf", "-1"))), "nbf claim"));
  BOOST_TEST(mentions(problem_of(key_of(with("exp", "253402300800"))), "exp claim"));
  BOOST_TEST(mentions(problem_of(key_of(with("iat", "9223372036854775807"))), "iat claim"));
  BOOST_TEST(mentions(problem_of(key_of(with("exp", "1e300"))), "exp claim is not a number"));
}

BOOST_AUTO_TEST_CASE(times_in_range_but_absurd_are_refused) {
  // No key lives a year; an exp more than 366 days away is forged.
  BOOST_TEST(bool(check_uploaded_key(key_of(with("exp", std::to_string(now + 366 * day))), key_kind::collections,
                                     now, client)));
  BOOST_TEST(mentions(problem_of(key_of(with("exp", std::to_string(now + 367 * day)))), "more than 366 days away"));
  BOOST_TEST(mentions(problem_of(key_of(with("exp", "253402300799"))), "exp claim"));
  // Issued more than a day ahead of our clock.
  BOOST_TEST(bool(check_uploaded_key(key_of(with("iat", std::to_string(now + day))), key_kind::collections, now,
                                     client)));
  BOOST_TEST(mentions(problem_of(key_of(with("iat", std::to_string(now + day + 1)))), "iat claim"));
  // Expired, as before.
  BOOST_TEST(mentions(problem_of(key_of(with("exp", std::to_string(now)))), "had already expired"));
}

BOOST_AUTO_TEST_CASE(no_order_of_iat_nbf_exp_is_required) {
  // As in Microsoft's documented example: exp before iat, nbf a month after it.
  auto claims = good_claims();
  claims["iat"] = now - 10;
  claims["exp"] = now + 3600;
  claims["nbf"] = now + 30 * day;
  BOOST_TEST(bool(check_uploaded_key(key_of(json::serialize(claims)), key_kind::collections, now, client)));
}

BOOST_AUTO_TEST_CASE(string_claims_are_bounded_and_valid_text) {
  BOOST_TEST(mentions(problem_of(key_of(with("clientId", R"("a\u0000b")"))), "clientId claim contains a NUL"));
  BOOST_TEST(mentions(problem_of(key_of(with("clientId", "\"" + std::string(129, 'c') + "\""))),
                      "clientId claim is 129 bytes long; at most 128"));
  BOOST_TEST(mentions(problem_of(key_of(with("userId", "\"" + std::string(513, 'u') + "\""))), "userId claim"));
  BOOST_TEST(mentions(problem_of(key_of(with("refreshUri", "\"https://" + std::string(2041, 'r') + "\""))),
                      "refreshUri claim"));
  BOOST_TEST(mentions(problem_of(key_of(with("payload", "\"" + std::string(8193, 'p') + "\""))), "payload claim"));
  BOOST_TEST(mentions(problem_of(key_of(with("iss", "\"" + std::string(257, 'i') + "\""))), "iss claim"));
  // A lone surrogate escape: refused, whether by the JSON reader or as invalid UTF-8.
  const auto lone = problem_of(key_of(with("refreshUri", R"("https://x/\ud800")")));
  BOOST_TEST((mentions(lone, "refreshUri claim") || mentions(lone, "payload is not JSON")), lone);
}

BOOST_AUTO_TEST_CASE(claims_are_quoted_only_in_short_printable_excerpts) {
  const std::string long_id(120, 'z');
  auto foreign = problem_of(key_of(with("clientId", "\"" + long_id + "\"")));
  BOOST_TEST(mentions(foreign, "InconsistentClientId"));
  BOOST_TEST(!mentions(foreign, long_id));
  auto control = problem_of(key_of(with("clientId", R"("a\u001b[31mb")")));
  BOOST_TEST(mentions(control, "InconsistentClientId"));
  auto wrong_kind = problem_of(key_of(json::serialize(good_claims())), key_kind::purchase);
  BOOST_TEST(mentions(wrong_kind, "is a collections key"));
}

BOOST_AUTO_TEST_CASE(utf8_is_checked_strictly) {
  BOOST_TEST(is_valid_utf8(""));
  BOOST_TEST(is_valid_utf8("plain ascii"));
  BOOST_TEST(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\xae"));  // e-acute, euro, game controller
  BOOST_TEST(is_valid_utf8("\xf4\x8f\xbf\xbf"));                    // U+10FFFF
  for (std::string bad : {"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80", "\xf0\x80\x80\x80",
                          "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\x80", "\xc3", "\xe2\x82", "\xe2\x28\xa1"})
    BOOST_TEST(!is_valid_utf8(bad), "accepted " << bad.size() << " bytes");
}

BOOST_AUTO_TEST_CASE(user_ids) {
  BOOST_TEST(check_user_id("player-42").empty());
  BOOST_TEST(check_user_id(std::string(256, 'p')).empty());
  std::string emoji;
  for (int i = 0; i < 256; ++i) emoji += "\xf0\x9f\x8e\xae";
  BOOST_TEST(check_user_id(emoji).empty());  // 256 characters, 1024 bytes
  BOOST_TEST(mentions(check_user_id(""), "empty"));
  BOOST_TEST(mentions(check_user_id(std::string(257, 'p')), "257 characters long; at most 256"));
  BOOST_TEST(mentions(check_user_id(std::string(1 << 20, 'p')), "1048576 characters"));
  BOOST_TEST(mentions(check_user_id("a\nb"), "control characters"));
  BOOST_TEST(mentions(check_user_id(std::string("a\0b", 3)), "control characters"));
  BOOST_TEST(mentions(check_user_id("\xff"), "not valid UTF-8"));
}

// Random and adversarial claims never throw and always give either a key in range or a reason.
BOOST_AUTO_TEST_CASE(random_claims_give_a_key_in_range_or_a_reason) {
  std::mt19937_64 rng(20261204);
  auto pick = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
  auto random_text = [&](std::size_t max_len) {
    std::string s(static_cast<std::size_t>(pick(0, static_cast<std::int64_t>(max_len))), ' ');
    for (auto& ch : s) ch = static_cast<char>(pick(0, 3) == 0 ? pick(0, 255) : pick(0x20, 0x7e));
    return s;
  };
  auto random_time = [&]() -> json::value {
    switch (pick(0, 6)) {
      case 0: return pick(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max());
      case 1: return static_cast<std::uint64_t>(pick(0, std::numeric_limits<std::int64_t>::max())) * 2u;
      case 2: return static_cast<double>(pick(-1'000'000'000'000'000'000LL, 1'000'000'000'000'000'000LL)) * 1e-3;
      case 3: return now + pick(-400 * day, 400 * day);
      case 4: return json::string(random_text(20));
      case 5: return nullptr;
      default: return pick(-1, 253'402'300'801LL);
    }
  };
  auto random_string_claim = [&]() -> json::value {
    switch (pick(0, 3)) {
      case 0: return json::string(random_text(pick(0, 1) ? 64 : 9000));
      case 1: return pick(-5, 5);
      case 2: return json::array{1, "a"};
      default: return json::string(client);
    }
  };
  const std::int64_t earliest = key_bounds::earliest_time * 1'000'000, latest = key_bounds::latest_time * 1'000'000;
  int kept = 0;
  for (int i = 0; i < 20000; ++i) {
    auto claims = good_claims();
    for (const char* name : {"iat", "exp", "nbf"})
      if (pick(0, 2) == 0) claims[name] = random_time();
    for (const char* name : {"clientId", "userId", "refreshUri", "payload"})
      if (pick(0, 4) == 0) claims[prefix + name] = random_string_claim();
    if (pick(0, 9) == 0) claims.erase(pick(0, 1) ? "exp" : "iat");
    std::string claims_text = json::serialize(claims);
    if (pick(0, 19) == 0) claims_text = random_text(200);  // not JSON, or not an object
    const std::string key = pick(0, 49) == 0 ? random_text(300) : key_of(claims_text);
    const auto kind = pick(0, 1) ? key_kind::collections : key_kind::purchase;

    uploaded_key_check r;
    BOOST_REQUIRE_NO_THROW(r = check_uploaded_key(key, kind, now, pick(0, 1) ? client : ""));
    if (r) {
      ++kept;
      BOOST_TEST_REQUIRE(r.problem.empty());
      BOOST_TEST_REQUIRE((r.issued_at.micros >= earliest && r.issued_at.micros <= latest));
      BOOST_TEST_REQUIRE(r.expires_at.micros > now * 1'000'000);
      BOOST_TEST_REQUIRE(r.expires_at.micros <= (now + key_bounds::max_lifetime_ahead) * 1'000'000);
      BOOST_TEST_REQUIRE(r.issued_at.micros <= (now + key_bounds::max_issued_ahead) * 1'000'000);
    } else {
      BOOST_TEST_REQUIRE(!r.problem.empty());
      BOOST_TEST_REQUIRE(printable_ascii(r.problem), r.problem);
      BOOST_TEST_REQUIRE(r.problem.size() <= 400u, r.problem);
    }
    std::string user = random_text(pick(0, 1) ? 300 : 40);
    std::string user_problem;
    BOOST_REQUIRE_NO_THROW(user_problem = check_user_id(user));
    if (user_problem.empty()) {
      BOOST_TEST_REQUIRE(is_valid_utf8(user));
      BOOST_TEST_REQUIRE(!user.empty());
      BOOST_TEST_REQUIRE(user.find('\0') == std::string::npos);
    } else {
      BOOST_TEST_REQUIRE(printable_ascii(user_problem), user_problem);
    }
  }
  // The generator reaches both outcomes.
  BOOST_TEST(kept > 100);
  BOOST_TEST(kept < 19000);
}

namespace {

// Keys of each kind that expire `days` from now: keys of one kind are told apart by their exp.
std::string collections_key_expiring(int days) {
  auto claims = good_claims();
  claims["exp"] = now + days * day;
  return key_of(json::serialize(claims));
}

std::string purchase_key_expiring(int days) {
  auto claims = good_claims();
  claims["aud"] = "https://purchase.mp.microsoft.com/v6.0/keys";
  claims["exp"] = now + days * day;
  return key_of(json::serialize(claims));
}

}  // namespace

BOOST_AUTO_TEST_CASE(uploads_keep_the_newest_key_of_each_kind) {
  const auto c1 = collections_key_expiring(10), c2 = collections_key_expiring(20), p1 = purchase_key_expiring(30);
  auto v = check_player_uploads("player-1", {{1, c1, p1}, {2, c2, std::nullopt}, {3, std::nullopt, std::nullopt}},
                                now, client);
  BOOST_TEST(v.problems.empty());
  BOOST_TEST_REQUIRE(v.collections.has_value());
  BOOST_TEST(v.collections->key == c2);
  BOOST_TEST(v.collections->expires_at.micros == (now + 20 * day) * 1'000'000);
  BOOST_TEST(v.collections->issued_at.micros == (now - day) * 1'000'000);
  BOOST_TEST_REQUIRE(v.purchase.has_value());
  BOOST_TEST(v.purchase->key == p1);
}

BOOST_AUTO_TEST_CASE(uploads_without_keys_keep_nothing_and_say_nothing) {
  auto v = check_player_uploads("player-1", {{1, std::nullopt, std::nullopt}}, now, client);
  BOOST_TEST(!v.collections);
  BOOST_TEST(!v.purchase);
  BOOST_TEST(v.problems.empty());
  BOOST_TEST(check_player_uploads("player-1", {}, now, client).problems.empty());
}

BOOST_AUTO_TEST_CASE(a_refused_upload_names_its_event_and_keeps_the_last_good_key) {
  const auto good = collections_key_expiring(10);
  auto v = check_player_uploads("player-1", {{7, good, std::nullopt}, {8, "not-a-key", std::nullopt}}, now, client);
  BOOST_TEST_REQUIRE(v.collections.has_value());
  BOOST_TEST(v.collections->key == good);  // the refused later upload does not displace it
  BOOST_TEST_REQUIRE(v.problems.size() == 1u);
  BOOST_TEST(v.problems[0].starts_with("the collections_key uploaded in event 8 is not a valid Microsoft Store ID key"),
             v.problems[0]);
}

BOOST_AUTO_TEST_CASE(each_refusal_tells_who_must_act) {
  const auto expired = collections_key_expiring(-1);
  const auto wrong_kind = purchase_key_expiring(10);
  auto foreign = good_claims();
  foreign[prefix + "clientId"] = "22222222-2222-2222-2222-222222222222";
  auto v = check_player_uploads(
      "player-1", {{1, expired, std::nullopt}, {2, wrong_kind, std::nullopt}, {3, key_of(json::serialize(foreign)), std::nullopt},
                   {4, std::nullopt, collections_key_expiring(10)}},
      now, client);
  BOOST_TEST(!v.collections);
  BOOST_TEST(!v.purchase);
  BOOST_TEST_REQUIRE(v.problems.size() == 4u);
  BOOST_TEST(v.problems[0].starts_with("the collections_key uploaded in event 1 had already expired at "), v.problems[0]);
  BOOST_TEST(mentions(v.problems[0], "the game client must request a new key from the Store and upload it"));
  BOOST_TEST(v.problems[1].starts_with("the collections_key uploaded in event 2 is a purchase key"), v.problems[1]);
  BOOST_TEST(mentions(v.problems[1], "the game client must send its UserCollectionsId as collections_key"));
  BOOST_TEST(v.problems[2].starts_with("the collections_key uploaded in event 3 was created for another Entra "
                                       "application (InconsistentClientId"),
             v.problems[2]);
  BOOST_TEST(v.problems[3].starts_with("the purchase_key uploaded in event 4 is a collections key"), v.problems[3]);
  for (const auto& p : v.problems) BOOST_TEST(printable_ascii(p), p);
}

BOOST_AUTO_TEST_CASE(a_refused_user_id_comes_first_and_keeps_no_key) {
  auto v = check_player_uploads(std::string("bad\nid"),
                                {{1, collections_key_expiring(10), purchase_key_expiring(10)}, {2, "junk", std::nullopt}},
                                now, client);
  BOOST_TEST(!v.collections);
  BOOST_TEST(!v.purchase);
  BOOST_TEST_REQUIRE(v.problems.size() == 2u);
  BOOST_TEST(v.problems[0] == "the user_id contains control characters; the game backend must upload it with a valid one");
  BOOST_TEST(v.problems[1].starts_with("the collections_key uploaded in event 2 "), v.problems[1]);
}
