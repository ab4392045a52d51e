#include "emulator/store_auth.hpp"

#include "emulator/store_errors.hpp"
#include "emulator/store_request.hpp"

namespace esd::emulator {

namespace {

constexpr std::string_view invalid_token = "AuthenticationTokenInvalid";

}  // namespace

std::optional<http_response> store_auth::check_access_token(std::string_view token, std::int64_t now,
                                                            std::string_view source,
                                                            access_token_claims& out) const {
  if (token.empty())
    return store_error(http::status::unauthorized, "PartnerAadTicketRequired",
                       "The Entra ID access token was not passed in the Authorization header.", source);
  const auto claims = entra_.read(token);
  if (!claims)
    return store_error(
        http::status::unauthorized, invalid_token,
        "Authentication token supplied is invalid: the Entra ID access token was not issued to a known "
        "application.",
        source);
  if (claims->expires_at <= now)
    return store_error(http::status::unauthorized, invalid_token,
                       "Authentication token supplied is invalid: the Entra ID access token has expired.",
                       source);
  if (claims->not_before > now)
    return store_error(
        http::status::unauthorized, invalid_token,
        "Authentication token supplied is invalid: the Entra ID access token is not valid yet.", source);
  if (entra_.revoked(*claims)) {
    entra_.count_revoked_refusal();
    return store_error(http::status::unauthorized, invalid_token,
                       "Authentication token supplied is invalid: the Entra ID access token was revoked.",
                       source);
  }
  if (claims->audience != onestore_audience)
    return store_error(http::status::unauthorized, invalid_token,
                       "Authentication token supplied is invalid: the Entra ID access token's audience is " +
                           claims->audience + ", this service needs " + std::string(onestore_audience) + ".",
                       source);
  out = *claims;
  return std::nullopt;
}

std::optional<http_response> store_auth::check_store_key(const std::optional<store_key_spec>& key,
                                                         std::int64_t now, const access_token_claims& token,
                                                         std::string_view source,
                                                         const store::key_kind* kind) const {
  if (!key)
    return store_error(
        http::status::unauthorized, invalid_token,
        "Authentication token supplied is invalid: the Microsoft Store ID key (b2b key) is malformed or "
        "was not issued by this service.",
        source);
  if (key->expires_at <= now)
    return store_error(http::status::unauthorized, invalid_token,
                       "Authentication token supplied is invalid: the Microsoft Store ID key has expired.",
                       source);
  if (key->issued_at - 3600 > now)
    return store_error(
        http::status::unauthorized, invalid_token,
        "Authentication token supplied is invalid: the Microsoft Store ID key is not valid yet.", source);
  if (kind && key->kind != *kind)
    return store_error(http::status::unauthorized, invalid_token,
                       "Authentication token supplied is invalid: the Microsoft Store ID key is a " +
                           std::string(store::to_string(key->kind)) + " key; this service needs a " +
                           std::string(store::to_string(*kind)) + " key.",
                       source);
  if (!iequals(key->client_id, token.app_id))
    return store_error(
        http::status::unauthorized, "InconsistentClientId",
        "The clientId claim in the Microsoft Store ID key does not match the appid claim in the Entra "
        "ID access token.",
        source);
  return std::nullopt;
}

std::optional<store_key_spec> store_auth::accept_key(std::string_view key_text, std::int64_t now,
                                                     const access_token_claims& token,
                                                     std::string_view source, store::key_kind kind,
                                                     http_response& failure) const {
  auto key = keys_.read(key_text);
  if (auto refused = check_store_key(key, now, token, source, &kind)) {
    failure = std::move(*refused);
    return std::nullopt;
  }
  return key;
}

std::optional<store_post> store_auth::open_post(const http_request& req, std::string_view source,
                                                http_response& failure) const {
  if (req.method() != http::verb::post) {
    failure = store_error(http::status::method_not_allowed, "MethodNotAllowed", "Use POST.", source);
    return std::nullopt;
  }
  store_post call;
  call.now = now_seconds();
  if (auto refused = check_access_token(bearer_token(req), call.now, source, call.token)) {
    failure = std::move(*refused);
    return std::nullopt;
  }
  auto body = parse_body_object(req.body());
  if (!body) {
    failure = bad_parameter("The request body must be a JSON object.", source);
    return std::nullopt;
  }
  call.body = std::move(*body);
  return call;
}

}  // namespace esd::emulator
