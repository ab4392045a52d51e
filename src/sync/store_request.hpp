// One Store request for one player, the way every Store call is made (collections query, consume, grant,
// recurrences query, key renewal): the player's budget and the global pace, the service token, a short
// Retry-After waited out, the token fetched again after a 401 before any key is judged, and one reading
// of the answer (store_answer.hpp).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "sync/entra_token_cache.hpp"
#include "sync/retry_policy.hpp"
#include "sync/store_answer.hpp"
#include "sync/store_gateway.hpp"

namespace esd::sync {

struct store_request {
  api_endpoint endpoint;
  std::string url;
  store_call call;  // names the call in reasons, and the kind of key it carries
  // The body of one attempt, given the service token it goes with (a renewal carries it in the body).
  // Built per attempt, so no body is held while a wait runs.
  std::function<std::string(const std::string& service_token)> body;
  // The caller took the player's budget for the first attempt (it decides whether the call is worth a
  // request now); later attempts are admitted here like any other.
  bool first_admitted = false;
};

// 429s waited out inline for one request before it is recorded as throttled (and retried with backoff).
// Each wait is at most [sync] max_inline_wait; more than a few in a row means the Store wants a longer pause.
inline constexpr int max_inline_throttle_waits = 3;

// After a 429: how long to wait before asking again inside the sync, or nullopt to record it. Only a
// Retry-After the Store gave, no longer than max_inline_wait, and while waits_so_far is under the cap.
std::optional<std::chrono::seconds> inline_throttle_wait(const sync_failure& throttled, int waits_so_far,
                                                         std::chrono::milliseconds max_inline_wait);

// Sends `req` for `user` until it has a 2xx answer or a failure to record. `throttled_waits`, when given,
// counts the 429s waited out (for the sync's log line).
boost::asio::awaitable<std::variant<net::http_response, sync_failure>> send_store_request(
    const std::string& user, const store_request& req, store_gateway& gateway, entra_token_cache& tokens,
    int* throttled_waits = nullptr);

}  // namespace esd::sync
