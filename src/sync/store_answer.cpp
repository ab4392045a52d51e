#include "sync/store_answer.hpp"

#include "store/store_error.hpp"

namespace esd::sync {

namespace {

// The reasons the Store gives for refusing the key in the body rather than the token in the header.
// Anything else a 401 says (PartnerAadTicketRequired, an expired token, no reason at all) is about the token.
bool names_the_key(std::string_view reason) {
  return reason == "AuthenticationTokenInvalid" || reason == "InconsistentClientId";
}

std::string key_name(store::key_kind kind) {
  return kind == store::key_kind::purchase ? "purchase key" : "collections key";
}

}  // namespace

std::string store_error_reason(std::string_view body) {
  auto err = store::parse_store_error_body(body);
  return err.inner_code.empty() ? std::move(err.code) : std::move(err.inner_code);
}

store_answer classify_store_answer(int status, const std::map<std::string, std::string>& headers,
                                   std::string_view body, const store_call& call) {
  if (status >= 200 && status < 300) return {};
  const auto err = store::parse_store_error_body(body);
  const std::string reason = err.inner_code.empty() ? err.code : err.inner_code;
  const std::string what(call.what);
  const std::string http = "HTTP " + std::to_string(status) + (reason.empty() ? "" : " " + reason);
  const std::string detail = http + (err.message.empty() ? "" : ": " + err.message);

  if (status == 429)
    return {store_verdict::throttled,
            transient("throttled", what + ": the Store is throttling requests for this player (HTTP 429)",
                      retry_after_of(headers))};
  if (status == 401) {
    if (call.fresh_token && names_the_key(reason)) {
      auto f = permanent("dead_key", what + ": the Store refused the " + key_name(call.key) + " (" + reason +
                         ", also with a newly fetched service token); the game client must request a new "
                         "key and upload it");
      f.dead_key = call.key;
      return {store_verdict::key_refused, std::move(f)};
    }
    // Not the player's fault: our token, or the Store's view of it.
    auto f = transient("service_token", what + ": the Store refused the service token (" + http + ")" +
                       (call.fresh_token ? " also when newly fetched; check the app's association in Partner Center"
                                         : ""));
    return {call.fresh_token ? store_verdict::failed : store_verdict::token_refused, std::move(f)};
  }
  if (status == 408 || status >= 500)
    return {store_verdict::failed, transient("store_error", what + ": the Store failed (" + http + ")")};
  if (status == 400 || status == 409 || status == 413 || status == 422)
    return {store_verdict::rejected, permanent("store_rejected", what + ": the Store refused it (" + detail + ")")};
  // 403, 404 and the like: the endpoint or the app's setup, ours to fix, never the player's.
  return {store_verdict::failed, transient("store_error", what + ": the Store answered " + detail)};
}

}  // namespace esd::sync
