// The checks every Store endpoint makes before it looks at a request's content: the Entra access token
// (issued by us, for https://onestore.microsoft.com, current) and the Microsoft Store ID key (minted by
// this instance, current, of the kind the endpoint needs, issued to the token's client). A key that fails
// any of them is what the daemon calls dead: 401 AuthenticationTokenInvalid (or InconsistentClientId).
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string_view>

#include "emulator/entra.hpp"
#include "emulator/http_types.hpp"
#include "emulator/store_keys.hpp"

namespace esd::emulator {

// What every Store endpoint reads first from a POST: the time, the caller's access token, the JSON body.
struct store_post {
  std::int64_t now = 0;
  access_token_claims token;
  boost::json::object body;
};

class store_auth {
 public:
  store_auth(const entra_issuer& entra, const store_key_authority& keys) : entra_(entra), keys_(keys) {}

  // nullopt when the access token is one we issued for the Store audience and is current; otherwise the
  // 401 to send.
  std::optional<http_response> check_access_token(std::string_view token, std::int64_t now,
                                                  std::string_view source, access_token_claims& out) const;
  // nullopt when the key is ours, current, of `kind` (any kind when null) and issued to the token's
  // client; otherwise the 401.
  std::optional<http_response> check_store_key(const std::optional<store_key_spec>& key, std::int64_t now,
                                               const access_token_claims& token, std::string_view source,
                                               const store::key_kind* kind) const;

  // A POST with a current access token and a JSON object body: its parts; otherwise nullopt and the answer
  // to send in `failure` (405, 401, or 400 InvalidParameter).
  std::optional<store_post> open_post(const http_request& req, std::string_view source,
                                      http_response& failure) const;

  // check_store_key on the key text: its spec when it passes, otherwise nullopt and the 401 in `failure`.
  std::optional<store_key_spec> accept_key(std::string_view key_text, std::int64_t now,
                                           const access_token_claims& token, std::string_view source,
                                           store::key_kind kind, http_response& failure) const;

 private:
  const entra_issuer& entra_;
  const store_key_authority& keys_;
};

}  // namespace esd::emulator
