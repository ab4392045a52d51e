// What a Store answer means, read one way for every Store call: the collections query, consume, grant,
// the recurrences query and key renewal. Real error bodies carry the HTTP status name in "code"
// ("Unauthorized") and the reason in "innererror.code" ("AuthenticationTokenInvalid"); older or other
// bodies carry the reason in "code" alone.
//
// Microsoft's pages for these calls document only the 401 reasons; every other status is read by its HTTP
// meaning, the same on every call: a request the Store read and refused (400, 409, 413, 422) fails at
// once, as sending it again gets the same answer; any other 4xx (403, 404, ...) says our endpoint or the
// app's setup is wrong, which the player cannot cause and we can fix, so it is retried like a 5xx.
//
// A 401 AuthenticationTokenInvalid means "the Entra access token is invalid" as often as "the player's key
// is invalid": it is a verdict on the key only once a token fetched after a refusal is refused too.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "net/https_client.hpp"
#include "store/store_id_key.hpp"
#include "sync/retry_policy.hpp"

namespace esd::sync {

enum class store_verdict {
  ok,             // 2xx
  throttled,      // 429: transient, not before its Retry-After
  token_refused,  // 401 that may be the service token's fault: ask again with a fresh token before judging
  key_refused,    // the player's key, refused with a fresh token too: the key is dead
  rejected,       // the request itself was refused (400, 409, 413, ...): retrying cannot help
  failed,         // 5xx, 408, a fresh token refused for no reason of the key's, anything unexpected: transient
};

struct store_call {
  std::string_view what;  // names the call in a reason: "the collections query", "grant of P/S"
  store::key_kind key;    // the kind of key the request carried
  bool fresh_token = false;  // the token was fetched after the Store had refused one for this request
};

struct store_answer {
  store_verdict verdict = store_verdict::ok;
  sync_failure failure;  // what to record when not ok (for token_refused: had no fresh token helped)
};

// The reason an error body gives: innererror.code, else code.
std::string store_error_reason(std::string_view body);

store_answer classify_store_answer(int status, const std::map<std::string, std::string>& headers,
                                   std::string_view body, const store_call& call);
inline store_answer classify_store_answer(const net::http_response& resp, const store_call& call) {
  return classify_store_answer(resp.status, resp.headers, resp.body, call);
}

}  // namespace esd::sync
