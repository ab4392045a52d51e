// Hostile text, through the real binary: Store answers with text PostgreSQL cannot store (NUL, bytes that
// are not UTF-8, a 15 MB productId), numbers out of range, error bodies full of control characters, floods
// of forged uploads, and a database that refuses a sync's rows. Each stays one player's problem, recorded
// in bounded, escaped words; the good players beside them sync as usual.
#define BOOST_TEST_MODULE hostile_text
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include "harness/harness.hpp"
#include "store/store_id_key.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* query_path = "/v6.0/collections/query";

// One environment for the file, every test with its own players. Retries come soon and end after two
// attempts, so a drain sees a transient failure through to its end.
struct file_env : shared_environment {
  file_env()
      : shared_environment(
            "[sync]\nwatermark_overlap = 0s\nretry_base = 1s\nretry_cap = 1s\nmax_attempts = 2\n") {}
};
BOOST_TEST_GLOBAL_FIXTURE(file_env);

// Every request of this player's collections queries gets the content fault.
void hostile(const std::string& user, const std::string& mode, const std::string& extra = "") {
  E().emu.add_fault(std::string(R"({"path":")") + query_path + R"(","count":1000,"mode":")" + mode +
                    R"(","userId":")" + user + "\"" + extra + "}");
}

long long items_of(const std::string& user) {
  return E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = '" + user + "'");
}

std::string last_error(const std::string& user) {
  return E()
      .value("SELECT coalesce(last_error, '(null)') FROM entitlement_sync.user_status WHERE user_id = '" +
             user + "'")
      .value_or("(no row)");
}

// A player with n items on the emulator and a fresh key uploaded.
void player(const std::string& user, int n) {
  E().emu.put_items(user, emulator_instance::make_items(user, n));
  E().upload(user, E().emu.mint_key(user));
}

bool has_raw_control(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
  }
  return false;
}

// A key anyone can make (the clientId is public, the signature is not checked): a collections key whose
// clientId claim is `size` bytes of another app's id.
std::string forged_key(std::size_t size, int n) {
  const auto now = static_cast<long long>(std::time(nullptr));
  boost::json::object claims;
  claims["aud"] = "https://collections.mp.microsoft.com/v6.0/b2b/keys/create/collections";
  claims["iss"] = "https://collections.mp.microsoft.com/v6.0/b2b/keys/create/collections";
  claims["iat"] = now;
  claims["exp"] = now + 3600;
  claims["http://schemas.microsoft.com/marketplace/2015/08/claims/key/clientId"] =
      "forged-" + std::to_string(n) + "-" + std::string(size, 'x');
  return esd::store::base64url_encode(R"({"alg":"RS256","typ":"JWT"})") + "." +
         esd::store::base64url_encode(boost::json::serialize(claims)) + "." +
         esd::store::base64url_encode("signature");
}

}  // namespace

BOOST_AUTO_TEST_CASE(store_strings_postgresql_cannot_store_fail_alone_with_the_field_named) {
  for (int i = 0; i < 3; ++i) player("text-good-" + std::to_string(i), 5);
  player("text-nul", 5);
  hostile("text-nul", "nul_text", R"(,"field":"productId","item":2)");
  player("text-giant", 5);
  hostile("text-giant", "giant_text", R"(,"field":"productId","item":1)");
  player("text-tag", 5);
  hostile("text-tag", "nul_text", R"(,"field":"transactionId","item":0)");
  player("text-utf8", 5);
  hostile("text-utf8", "bad_utf8_text", R"(,"field":"skuId")");
  player("text-quantity", 5);
  hostile("text-quantity", "number", R"(,"field":"quantity","value":-3,"item":1)");
  player("text-quantity-big", 5);
  hostile("text-quantity-big", "number", R"(,"field":"quantity","value":3000000000,"item":0)");

  const std::string out = E().drain_ok(300s).output;
  BOOST_TEST(out.find("outcome=unrecorded") == std::string::npos, out);

  for (int i = 0; i < 3; ++i) {
    const std::string user = "text-good-" + std::to_string(i);
    BOOST_TEST(items_of(user) == 5);
    BOOST_TEST(last_error(user) == "(null)");
  }
  // An item with text PostgreSQL cannot store is refused alone: the others are written, the watermark stays
  // before it (so the next sync reads it again), and last_error names the item and the field.
  for (const auto& [user, field] : std::vector<std::pair<std::string, std::string>>{
           {"text-nul", "productId"}, {"text-giant", "productId"}, {"text-tag", "transactionId"},
           {"text-quantity", "quantity"}, {"text-quantity-big", "quantity"}}) {
    BOOST_TEST_CONTEXT(user) {
      BOOST_TEST(items_of(user) == 4);
      const std::string err = last_error(user);
      BOOST_TEST(err.find(field) != std::string::npos, err);
      BOOST_TEST(err.find("not stored") != std::string::npos, err);
      BOOST_TEST(err.size() < 4096u);
      BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = '" + user +
                           "' AND state <> 'done'") == 0);
    }
  }
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = 'text-nul' "
                       "AND item_id = 'text-nul-2'") == 0);
  // Bytes that are not UTF-8 make the answer not JSON: the Store's fault, retried, then failed with why.
  BOOST_TEST(items_of("text-utf8") == 0);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'text-utf8' "
                       "AND state = 'failed' AND last_error LIKE '%not valid JSON%'") == 1);
  BOOST_TEST(last_error("text-utf8").find("not valid JSON") != std::string::npos, last_error("text-utf8"));

  // Once the Store mends the item, the next sync picks it up: the watermark was held before it.
  E().emu.control("DELETE", "/_emulator/faults");
  E().exec_sql_resync("text-nul");
  E().drain_ok(300s).output;
  BOOST_TEST(items_of("text-nul") == 5);
  BOOST_TEST(last_error("text-nul") == "(null)");
}

BOOST_AUTO_TEST_CASE(an_error_body_with_invalid_utf8_and_control_characters_is_recorded_escaped) {
  player("errbody-good", 3);
  player("errbody-400", 3);
  E().emu.add_fault(std::string(R"({"path":")") + query_path +
                    R"(","count":1000,"mode":"bad_utf8_error","status":400,"userId":"errbody-400"})");
  player("errbody-503", 3);
  E().emu.add_fault(std::string(R"({"path":")") + query_path +
                    R"(","count":1000,"mode":"bad_utf8_error","status":503,"userId":"errbody-503"})");

  const std::string out = E().drain_ok(300s).output;
  BOOST_TEST(out.find("outcome=unrecorded") == std::string::npos, out);
  BOOST_TEST(!has_raw_control(out), "a raw control character reached the log");
  BOOST_TEST(out.find('\x1b') == std::string::npos);

  BOOST_TEST(items_of("errbody-good") == 3);
  for (const std::string user : {"errbody-400", "errbody-503"}) {
    BOOST_TEST_CONTEXT(user) {
      const std::string err = last_error(user);
      BOOST_TEST(err != "(null)");
      BOOST_TEST(!has_raw_control(err), err);
      BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = '" + user +
                           "' AND state = 'failed' AND last_error NOT LIKE '%stopped before finishing%'") ==
                 1);
    }
  }
  BOOST_TEST(last_error("errbody-400").find("HTTP 400") != std::string::npos, last_error("errbody-400"));
}

BOOST_AUTO_TEST_CASE(a_flood_of_150_forged_uploads_stores_well_under_a_megabyte_of_error_text) {
  const std::string user = "flood-player";
  player("flood-good", 2);
  std::size_t uploaded = 0;
  for (int i = 0; i < 150; ++i) {
    const auto key = forged_key(11'000, i);
    uploaded += key.size();
    E().upload(user, key);
  }
  BOOST_TEST(uploaded > 1'500'000u);  // the flood of the report: 1.7 MB of keys
  const std::string out = E().drain_ok(300s).output;
  BOOST_TEST(out.find("outcome=unrecorded") == std::string::npos);
  BOOST_TEST(out.size() < 2'000'000u);
  BOOST_TEST(items_of("flood-good") == 2);

  const auto stored = E().count(
                          "SELECT coalesce(sum(octet_length(last_error)), 0) FROM "
                          "entitlement_sync.key_uploads WHERE user_id = '" +
                          user + "'") +
                      E().count(
                          "SELECT coalesce(sum(octet_length(last_error)), 0) FROM entitlement_sync.users "
                          "WHERE user_id = '" +
                          user + "'");
  BOOST_TEST(stored < 200'000);
  BOOST_TEST(
      E().count("SELECT max(octet_length(last_error)) FROM entitlement_sync.key_uploads WHERE user_id = '" +
                user + "'") <= 4096);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = '" + user +
                       "' AND state = 'failed' AND last_error IS NOT NULL") == 150);
  const std::string err = last_error(user);
  // The forged keys' 11,000-byte clientId is refused by name before the key is kept.
  BOOST_TEST(err.find("clientId claim") != std::string::npos, err);
  BOOST_TEST(err.find(std::string(200, 'x')) == std::string::npos, "a claim was echoed in full");
}

BOOST_AUTO_TEST_CASE(a_sync_whose_rows_the_database_refuses_is_recorded_as_a_failure) {
  // A constraint stands for any refusal that is not a lost connection: the write fails, the failure is
  // then recorded by a second, minimal write.
  exec_sql(E().pg.url(),
           "ALTER TABLE entitlement_sync.entitlements ADD CONSTRAINT test_refused "
           "CHECK (product_id <> 'refused-by-the-database')");
  player("refused-good", 3);
  E().emu.put_items("refused-player", R"([{"itemId":"refused-1","productId":"refused-by-the-database",)"
                                      R"("skuId":"0010","productType":"Game","status":"Active","quantity":1,)"
                                      R"("modifiedDate":"2024-03-01T10:00:00.0000000+00:00"}])");
  E().upload("refused-player", E().emu.mint_key("refused-player"));
  const std::string out = E().drain_ok(300s).output;
  exec_sql(E().pg.url(), "ALTER TABLE entitlement_sync.entitlements DROP CONSTRAINT test_refused");

  BOOST_TEST(out.find("outcome=unrecorded") == std::string::npos, out);
  BOOST_TEST(items_of("refused-good") == 3);
  const std::string err = last_error("refused-player");
  BOOST_TEST(err.find("the database refused") != std::string::npos, err);
  BOOST_TEST(err.find("SQLSTATE 23514") != std::string::npos, err);
  // PostgreSQL quotes the refused row in its DETAIL line (in user_keys that row holds keys): never passed on.
  BOOST_TEST(err.find("Failing row") == std::string::npos, err);
  BOOST_TEST(out.find("Failing row") == std::string::npos, out);
  BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'refused-player' "
                       "AND state = 'failed' AND last_error NOT LIKE '%stopped before finishing%'") == 1);
}

BOOST_AUTO_TEST_CASE(hostile_subscriptions_answers_stay_in_subscriptions_error) {
  const std::string nul = "subs-nul", errbody = "subs-errbody";
  for (const auto& user : {nul, errbody}) {
    E().emu.put_items(user, emulator_instance::make_items(user, 2));
    E().emu.put_subscriptions(user, R"([{"productId":"CFQ7TTC0HC8Z","skuId":"0002","recurrenceState":"Active"}])");
    E().upload(user, E().emu.mint_key(user, "collections"), E().emu.mint_key(user, "purchase"));
  }
  E().emu.add_fault(
      R"({"path":"/v8.0/b2b/recurrences/query","count":1000,"mode":"nul_text","field":"productId",)"
      R"("userId":")" +
      nul + R"("})");
  E().emu.add_fault(
      R"({"path":"/v8.0/b2b/recurrences/query","count":1000,"mode":"bad_utf8_error","status":400,)"
      R"("userId":")" +
      errbody + R"("})");
  const std::string out = E().drain_ok(300s).output;
  BOOST_TEST(out.find("outcome=unrecorded") == std::string::npos, out);
  BOOST_TEST(!has_raw_control(out), "a raw control character reached the log");

  for (const auto& user : {nul, errbody}) {
    BOOST_TEST_CONTEXT(user) {
      // The collection is written; the subscriptions read alone failed, and says why.
      BOOST_TEST(items_of(user) == 2);
      BOOST_TEST(last_error(user) == "(null)");
      const auto err = E().value(
          "SELECT subscriptions_error FROM entitlement_sync.user_status WHERE user_id = '" + user + "'");
      BOOST_TEST_REQUIRE(err.has_value());
      BOOST_TEST(!has_raw_control(*err), *err);
      BOOST_TEST(E().count("SELECT count(*) FROM entitlement_sync.subscriptions WHERE user_id = '" + user +
                           "'") == 0);
    }
  }
  const auto nul_err =
      E().value("SELECT subscriptions_error FROM entitlement_sync.user_status WHERE user_id = '" + nul + "'");
  BOOST_TEST(nul_err.value_or("").find("productId contains a NUL") != std::string::npos, nul_err.value_or(""));
  E().emu.control("DELETE", "/_emulator/faults");
}
