#define BOOST_TEST_MODULE store_id_key
#include "store/store_id_key.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include "fixture_file.hpp"
#include <fstream>
#include <set>
#include <sstream>

namespace json = boost::json;
using namespace esd::store;

namespace {

using esd::test::fixture;

// A fake signature: the decoder never checks it, but it must look like base64url.
const std::string signature = base64url_encode(std::string(256, '\x5a'));

std::string make_jwt(const std::string& header_json, const std::string& payload_json) {
  return base64url_encode(header_json) + "." + base64url_encode(payload_json) + "." + signature;
}

json::object claims_fixture(const std::string& name) { return json::parse(fixture(name)).as_object(); }

std::string with_claims(json::object claims) {
  return make_jwt(fixture("user_store_id_jwt_header_example_gdk.json"), json::serialize(claims));
}

// Decodes and checks the failure is clean: no claims, a message, and no piece of the key in it.
std::string error_of(const std::string& jwt) {
  key_decode_result r;
  BOOST_REQUIRE_NO_THROW(r = decode_store_id_key(jwt));
  BOOST_TEST(!r);
  BOOST_TEST(!r.error.empty());
  // No run of 12+ characters of the key appears in the message (covers header, payload and signature).
  for (std::size_t i = 0; i + 12 <= jwt.size(); i += 6)
    BOOST_TEST(r.error.find(jwt.substr(i, 12)) == std::string::npos, "error quotes the key: " << r.error);
  return r.error;
}

}  // namespace

BOOST_AUTO_TEST_CASE(base64url_round_trip) {
  for (std::string s :
       {std::string(""), std::string("f"), std::string("fo"), std::string("foo"), std::string("foob"),
        std::string("fooba"), std::string("foobar"), std::string("\xff\xfe\xfd\x00\x01", 5)}) {
    BOOST_TEST(base64url_decode(base64url_encode(s)).value_or("(invalid)") == s);
  }
  BOOST_TEST(base64url_encode("foobar") == "Zm9vYmFy");
  BOOST_TEST(base64url_encode("fo") == "Zm8");
  BOOST_TEST(base64url_encode("\xfb\xff") == "-_8");  // the two url-safe characters
  BOOST_TEST(*base64url_decode("Zm8=") == "fo");      // padding accepted
  BOOST_TEST(*base64url_decode("Zg==") == "f");
  BOOST_TEST(!base64url_decode("Zm8+"));  // standard alphabet is not base64url
  BOOST_TEST(!base64url_decode("Zm8/"));
  BOOST_TEST(!base64url_decode("Z"));    // 6 bits are no byte
  BOOST_TEST(!base64url_decode("Zg="));  // wrong padding
  BOOST_TEST(!base64url_decode("Zh"));   // non-zero leftover bits
  BOOST_TEST(!base64url_decode("Zm 8"));
}

BOOST_AUTO_TEST_CASE(uwp_doc_example_key) {
  auto r = decode_store_id_key(make_jwt(fixture("user_store_id_jwt_header_example.json"),
                                        fixture("user_store_id_jwt_claims_example.json")));
  BOOST_TEST_REQUIRE(bool(r), r.error);
  BOOST_TEST(r.error.empty());
  const auto& c = *r.claims;
  BOOST_TEST((c.kind == key_kind::collections));
  BOOST_TEST(to_string(c.kind) == "collections");
  BOOST_TEST(c.audience == "https://collections.mp.microsoft.com/v6.0/keys");
  BOOST_TEST(c.issuer == "https://collections.mp.microsoft.com/v6.0/keys");
  BOOST_TEST(c.client_id == "1d5773695a3b44928227393bfef1e13d");
  BOOST_TEST(c.user_id == "infusQMLaYCrgtC0d/SZWoPB4FqLEwHXgZFuMJ6TuTY=");
  BOOST_TEST(c.refresh_uri == "https://collections.mp.microsoft.com/v6.0/b2b/keys/renew");
  // The doc's timestamps are inconsistent (exp before iat); the decoder reports them as they are and
  // leaves judging expiry to the caller, who knows the time.
  BOOST_TEST(c.issued_at == 1733526889);
  BOOST_TEST(c.expires_at == 1733523289);
  BOOST_TEST(c.not_before == 1736118889);
}

BOOST_AUTO_TEST_CASE(gdk_doc_example_key) {
  auto r = decode_store_id_key(make_jwt(fixture("user_store_id_jwt_header_example_gdk.json"),
                                        fixture("user_store_id_jwt_claims_example_gdk.json")));
  BOOST_TEST_REQUIRE(bool(r), r.error);
  BOOST_TEST(r.claims->expires_at - r.claims->issued_at == 90 * 86400 - 1);
  BOOST_TEST(r.claims->issued_at - r.claims->not_before == 3601);
  BOOST_TEST(r.claims->client_id == "1d577369placeholder7393beef1e13d");
}

BOOST_AUTO_TEST_CASE(purchase_key) {
  auto claims = claims_fixture("user_store_id_jwt_claims_example_gdk.json");
  claims["aud"] = "https://purchase.mp.microsoft.com/v6.0/keys";
  claims["iss"] = "https://purchase.mp.microsoft.com/v6.0/keys";
  auto r = decode_store_id_key(with_claims(claims));
  BOOST_TEST_REQUIRE(bool(r), r.error);
  BOOST_TEST((r.claims->kind == key_kind::purchase));
  BOOST_TEST(to_string(r.claims->kind) == "purchase");
  BOOST_TEST(r.claims->audience == "https://purchase.mp.microsoft.com/v6.0/keys");
}

BOOST_AUTO_TEST_CASE(padded_parts_and_optional_claims) {
  auto claims = claims_fixture("user_store_id_jwt_claims_example_gdk.json");
  claims.erase("nbf");
  claims.erase("iss");
  claims["exp"] = 1450171541.5;  // RFC 7519 allows fractional NumericDates
  std::string header = fixture("user_store_id_jwt_header_example.json");
  std::string payload = json::serialize(claims);
  auto pad = [](std::string s) { return s + std::string((4 - s.size() % 4) % 4, '='); };
  auto r = decode_store_id_key(pad(base64url_encode(header)) + "." + pad(base64url_encode(payload)) + "." +
                               signature);
  BOOST_TEST_REQUIRE(bool(r), r.error);
  BOOST_TEST(r.claims->not_before == 0);
  BOOST_TEST(r.claims->issuer.empty());
  BOOST_TEST(r.claims->expires_at == 1450171541);
}

BOOST_AUTO_TEST_CASE(malformed_keys_give_distinct_errors) {
  const std::string header = fixture("user_store_id_jwt_header_example_gdk.json");
  const auto good = claims_fixture("user_store_id_jwt_claims_example_gdk.json");
  auto without = [&](const char* key) {
    auto c = good;
    c.erase(key);
    return with_claims(c);
  };
  auto with = [&](const char* key, json::value v) {
    auto c = good;
    c[key] = std::move(v);
    return with_claims(c);
  };
  const std::string good_payload = base64url_encode(json::serialize(good));

  std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"two parts", base64url_encode(header) + "." + good_payload},
      {"four parts", with_claims(good) + ".abc"},
      {"whitespace", with_claims(good) + "\n"},
      {"bad base64 header", "eyJ!." + good_payload + "." + signature},
      {"bad base64 payload", base64url_encode(header) + ".eyJ+/." + signature},
      {"header not JSON", base64url_encode("typ=JWT") + "." + good_payload + "." + signature},
      {"payload not JSON", make_jwt(header, "{\"aud\":")},
      {"payload a JSON array", make_jwt(header, R"(["https://collections.mp.microsoft.com/v6.0/keys"])")},
      {"bad signature", base64url_encode(header) + "." + good_payload + ".sig+nature"},
      {"missing aud", without("aud")},
      {"aud not a string", with("aud", json::array{"https://collections.mp.microsoft.com/v6.0/keys"})},
      {"foreign aud", with("aud", "https://graph.microsoft.com")},
      {"foreign aud, lookalike", with("aud", "https://evil.example/collections")},
      {"exp as string", with("exp", "1450171541")},
      {"missing exp", without("exp")},
      {"missing iat", without("iat")},
      {"nbf null", with("nbf", nullptr)},
      {"userId a number", with("http://schemas.microsoft.com/marketplace/2015/08/claims/key/userId", 5)},
      {"huge", std::string(16 * 1024 + 1, 'A')},
  };
  std::set<std::string> messages;
  for (const auto& [name, jwt] : cases) {
    BOOST_TEST_CONTEXT(name) {
      std::string e = error_of(jwt);
      BOOST_TEST_MESSAGE(name << ": " << e);
      messages.insert(e);
    }
  }
  BOOST_TEST(messages.size() == cases.size(), "every failure has its own message");
}

BOOST_AUTO_TEST_CASE(error_wording) {
  const auto good = claims_fixture("user_store_id_jwt_claims_example_gdk.json");
  auto c = good;
  c["exp"] = "1450171541";
  BOOST_TEST(error_of(with_claims(c)).find("exp") != std::string::npos);
  c = good;
  c["aud"] = "https://graph.microsoft.com/\x01\n" + std::string(200, 'x');
  std::string e = error_of(with_claims(c));
  BOOST_TEST(e.find("https://graph.microsoft.com/") != std::string::npos);  // says what the audience was
  BOOST_TEST(e.find('\n') == std::string::npos);                            // but cannot forge log lines
  BOOST_TEST(e.size() < 300u);
  BOOST_TEST(error_of(base64url_encode("{}") + "." + base64url_encode("{}")).find("3") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(limit_is_16_kib) {
  auto claims = claims_fixture("user_store_id_jwt_claims_example_gdk.json");
  std::string jwt = with_claims(claims);
  // Pad the signature up to exactly 16 KiB: still decoded.
  std::string at_limit = jwt + std::string(16 * 1024 - jwt.size(), 'A');
  BOOST_TEST(at_limit.size() == 16u * 1024);
  // The padded signature may be an invalid length; compare with one byte over the limit instead.
  auto r = decode_store_id_key(at_limit);
  BOOST_TEST(r.error.find("16 KiB") == std::string::npos);
  BOOST_TEST(decode_store_id_key(at_limit + "A").error.find("16 KiB") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(deeply_nested_payload_does_not_crash) {
  std::string deep = std::string(100'000 / 2, '[') + std::string(100'000 / 2, ']');
  std::string jwt = make_jwt("{}", "{\"aud\":" + deep.substr(0, 4000) + "}");
  BOOST_CHECK_NO_THROW(decode_store_id_key(jwt));
  BOOST_TEST(!decode_store_id_key(jwt));
}
