// Microsoft Entra ID client-credentials tokens: the request body and the response, v1 and v2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esd::store {

enum class entra_endpoint_version { v1, v2 };

// application/x-www-form-urlencoded body, every value percent-encoded:
// v2: grant_type=client_credentials&client_id=..&client_secret=..&scope=<audience>/.default
// v1: grant_type=client_credentials&client_id=..&client_secret=..&resource=<audience>
std::string build_entra_token_request(entra_endpoint_version v, std::string_view client_id,
                                      std::string_view client_secret, std::string_view audience);

// v1 when the URL path ends in "/oauth2/token", v2 otherwise ("/oauth2/v2.0/token").
entra_endpoint_version entra_version_for_url(std::string_view token_url);

struct entra_token {
  std::string access_token;
  std::int64_t expires_in_seconds = 0;  // v2 sends a number, v1 a string of digits: both accepted
};

struct entra_token_result {
  std::optional<entra_token> token;
  // What was wrong, from the answer's shape alone (status, content type, length, the OAuth error code when
  // it is a short identifier, AADSTS numbers), e.g. "the token endpoint answered with an error
  // invalid_client (AADSTS7000215) (HTTP 401, application/json, 512 bytes)". Never the answer's text: an
  // endpoint that echoes the request would put the client secret there.
  std::string error;
  explicit operator bool() const { return token.has_value(); }
};

struct entra_token_answer {
  unsigned status = 200;
  std::string_view content_type;
  std::string_view body;
};

// A token only from a 200 without an "error" field.
entra_token_result parse_entra_token_response(const entra_token_answer& answer);

// application/x-www-form-urlencoded percent-encoding (space as %20; unreserved kept).
std::string form_urlencode(std::string_view s);

}  // namespace esd::store
