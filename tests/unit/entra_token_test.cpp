#define BOOST_TEST_MODULE entra_token
#include "store/entra_token.hpp"

#include <boost/test/unit_test.hpp>

#include "fixture_file.hpp"
#include <fstream>
#include <map>
#include <sstream>

using namespace esd::store;

namespace {

using esd::test::fixture;

// Decodes application/x-www-form-urlencoded independently of the encoder under test.
std::map<std::string, std::string> decode_form(const std::string& body) {
  std::map<std::string, std::string> out;
  std::istringstream in(body);
  std::string pair;
  while (std::getline(in, pair, '&')) {
    auto eq = pair.find('=');
    BOOST_TEST_REQUIRE(eq != std::string::npos, pair);
    std::string value;
    for (std::size_t i = eq + 1; i < pair.size(); ++i) {
      if (pair[i] == '%') {
        BOOST_TEST_REQUIRE(i + 2 < pair.size());
        value += static_cast<char>(std::stoi(pair.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        value += pair[i];
      }
    }
    BOOST_TEST(out.emplace(pair.substr(0, eq), value).second, "duplicate field " << pair.substr(0, eq));
  }
  return out;
}

}  // namespace

entra_token_result parse_json(std::string_view body, unsigned status = 200) {
  return parse_entra_token_response({status, "application/json; charset=utf-8", body});
}

BOOST_AUTO_TEST_CASE(v1_fixture_with_string_numbers) {
  auto r = parse_json(fixture("entra_token_response_v1_oauth2_token_purchase_audience.json"));
  BOOST_TEST_REQUIRE(bool(r), r.error);
  BOOST_TEST(r.error.empty());
  BOOST_TEST(r.token->access_token == "REDACTED");
  BOOST_TEST(r.token->expires_in_seconds == 3599);
}

BOOST_AUTO_TEST_CASE(v2_body_with_numbers) {
  auto r = parse_json(
      R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAiOi.x.y"})");
  BOOST_TEST_REQUIRE(bool(r), r.error);
  BOOST_TEST(r.token->access_token == "eyJ0eXAiOi.x.y");
  BOOST_TEST(r.token->expires_in_seconds == 3599);
}

BOOST_AUTO_TEST_CASE(error_bodies) {
  // Shape of Entra's answer to a wrong client secret (AADSTS7000215), with its CRLF line breaks.
  const std::string body =
      R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.\r\nTrace ID: 0000\r\nCorrelation ID: 1111\r\nTimestamp: 2024-01-01 00:00:00Z","error_codes":[7000215],"timestamp":"2024-01-01 00:00:00Z"})";
  auto r = parse_json(body, 401);
  BOOST_TEST(!r);
  BOOST_TEST(r.error ==
             "the token endpoint answered with an error invalid_client (AADSTS7000215) (HTTP 401, "
             "application/json, " +
                 std::to_string(body.size()) + " bytes)");

  r = parse_json(R"({"error":"unauthorized_client"})", 400);
  BOOST_TEST(r.error.find("an error unauthorized_client (HTTP 400") != std::string::npos, r.error);

  // An error wins even when a token is present: never use a token from a failed exchange.
  r = parse_json(
      R"({"error":"invalid_request","error_description":"bad","access_token":"x","expires_in":1})");
  BOOST_TEST(!r);
  BOOST_TEST(r.error.find("invalid_request (HTTP 200") != std::string::npos, r.error);

  // So does a status other than 200.
  r = parse_json(R"({"access_token":"x","expires_in":3599})", 500);
  BOOST_TEST(!r);
  BOOST_TEST(r.error.find("HTTP 500") != std::string::npos, r.error);
}

// An endpoint that echoes the form it was sent (a debugging proxy, a misrouted request) must not get the
// client secret into an error, whatever the shape of its answer.
BOOST_AUTO_TEST_CASE(an_echo_of_the_request_never_reaches_the_error) {
  const std::string secret = "s3cr3t~Value.0123456789";
  const std::string form = build_entra_token_request(entra_endpoint_version::v2, "client", secret,
                                                     "https://onestore.microsoft.com");
  const std::string html = "<html><body><pre>" + form + "</pre></body></html>";
  struct echo_case {
    unsigned status;
    std::string content_type, body;
  };
  for (const auto& c : std::vector<echo_case>{
           {400, "text/html; charset=utf-8", html},
           {200, "text/plain", form},
           {400, "application/json", R"({"error":")" + form + R"("})"},
           {400, "application/json", R"({"error":")" + secret + R"("})"},
           {401, "application/json", R"({"error":"invalid_client","error_description":")" + form + R"("})"},
           {200, "application/json",
            R"({"access_token":"t","expires_in":3599,"token_type":")" + secret + R"("})"},
           {200, "application/json", R"({"access_token":"t","expires_in":")" + secret + R"("})"},
           {200, "application/json",
            R"({"access_token":")" + secret + R"(","expires_in":3599,"token_type":"x"})"},
           {400, form, "x"},
           {400, "text/html; client_secret=" + secret, html},
       }) {
    const auto r = parse_entra_token_response({c.status, c.content_type, c.body});
    BOOST_TEST(!r, c.body);
    BOOST_TEST(r.error.find(secret) == std::string::npos, r.error);
    BOOST_TEST(r.error.find("s3cr3t") == std::string::npos, r.error);
    BOOST_TEST(r.error.find("client_secret") == std::string::npos, r.error);
    BOOST_TEST(r.error.find("HTTP " + std::to_string(c.status)) != std::string::npos, r.error);
    BOOST_TEST(r.error.find(std::to_string(c.body.size()) + " bytes") != std::string::npos, r.error);
  }
  const auto html_answer = parse_entra_token_response({400, "text/html; charset=utf-8", html});
  BOOST_TEST(html_answer.error == "the token endpoint's answer is not a JSON object (HTTP 400, text/html, " +
                                      std::to_string(html.size()) + " bytes)");
  BOOST_TEST(parse_entra_token_response({400, form, "x"}).error.find("an unusual content type") !=
             std::string::npos);
  BOOST_TEST(parse_entra_token_response({502, "", ""}).error.find("(HTTP 502, no content type, 0 bytes)") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(malformed_answers) {
  struct bad_case {
    const char* body;
    const char* expected;
  };
  for (auto [body, expected] : std::initializer_list<bad_case>{
           {"", "not a JSON object"},
           {"<html><body>502 Bad Gateway</body></html>", "not a JSON object"},
           {"[]", "not a JSON object"},
           {R"({"token_type":"Bearer","expires_in":3599})", "access_token is missing"},
           {R"({"access_token":"","expires_in":3599})", "access_token is empty"},
           {R"({"access_token":5,"expires_in":3599})", "access_token is not a string"},
           {R"({"access_token":"t"})", "expires_in is missing"},
           {R"({"access_token":"t","expires_in":"soon"})", "expires_in is not a number"},
           {R"({"access_token":"t","expires_in":"-5"})", "expires_in is not a number"},
           {R"({"access_token":"t","expires_in":"35 99"})", "expires_in is not a number"},
           {R"({"access_token":"t","expires_in":-1})", "expires_in is not a number"},
           {R"({"access_token":"t","expires_in":3599.5})", "expires_in is not a number"},
           {R"({"access_token":"t","expires_in":99999999999999999999})", "expires_in is not a number"},
           {R"({"access_token":"t","expires_in":"99999999999"})", "expires_in is not a number"},
           {R"({"access_token":"t","expires_in":3599,"token_type":"pop"})", "not a Bearer token"},
       }) {
    entra_token_result r;
    BOOST_REQUIRE_NO_THROW(r = parse_json(body));
    BOOST_TEST(!r, body);
    BOOST_TEST(r.error.find(expected) != std::string::npos, body << " -> " << r.error);
  }
}

BOOST_AUTO_TEST_CASE(form_encoding) {
  BOOST_TEST(form_urlencode("AZaz09-._~") == "AZaz09-._~");
  BOOST_TEST(form_urlencode("a b+c&d=e/f?g#h%i") == "a%20b%2Bc%26d%3De%2Ff%3Fg%23h%25i");
  BOOST_TEST(form_urlencode("\xC3\xA9") == "%C3%A9");  // UTF-8 bytes, upper-case hex
  BOOST_TEST(form_urlencode(std::string("\0\n", 2)) == "%00%0A");
  BOOST_TEST(form_urlencode("") == "");
}

BOOST_AUTO_TEST_CASE(v2_request_body) {
  // Entra secrets are generated with characters such as ~ . _ - and may contain + / = from older tools.
  const std::string secret = "aB3~x.Y_z-q+/=&%\"' \n";
  std::string body =
      build_entra_token_request(entra_endpoint_version::v2, "00000000-0000-0000-0000-000000000001", secret,
                                "https://onestore.microsoft.com");
  BOOST_TEST(body.find(' ') == std::string::npos);
  BOOST_TEST(body.find('+') == std::string::npos);
  auto form = decode_form(body);
  BOOST_TEST(form.size() == 4u);
  BOOST_TEST(form["grant_type"] == "client_credentials");
  BOOST_TEST(form["client_id"] == "00000000-0000-0000-0000-000000000001");
  BOOST_TEST(form["client_secret"] == secret);
  BOOST_TEST(form["scope"] == "https://onestore.microsoft.com/.default");
  BOOST_TEST(body.find("scope=https%3A%2F%2Fonestore.microsoft.com%2F.default") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(v1_request_body) {
  std::string body = build_entra_token_request(entra_endpoint_version::v1, "cid", "s&cret",
                                               "https://onestore.microsoft.com/b2b/keys/create/purchase");
  auto form = decode_form(body);
  BOOST_TEST(form.size() == 4u);
  BOOST_TEST(form["client_secret"] == "s&cret");
  BOOST_TEST(form["resource"] == "https://onestore.microsoft.com/b2b/keys/create/purchase");
  BOOST_TEST(!form.contains("scope"));
}

BOOST_AUTO_TEST_CASE(version_from_url) {
  using enum entra_endpoint_version;
  BOOST_TEST((entra_version_for_url("https://login.microsoftonline.com/tenant/oauth2/token") == v1));
  BOOST_TEST((entra_version_for_url("https://login.microsoftonline.com/tenant/oauth2/token/") == v1));
  BOOST_TEST(
      (entra_version_for_url("https://login.microsoftonline.com/tenant/oauth2/token?api-version=1.0") == v1));
  BOOST_TEST((entra_version_for_url("https://login.microsoftonline.com/tenant/oauth2/v2.0/token") == v2));
  BOOST_TEST((entra_version_for_url("https://127.0.0.1:8443/tenant/oauth2/v2.0/token") == v2));
  BOOST_TEST((entra_version_for_url("") == v2));
}
