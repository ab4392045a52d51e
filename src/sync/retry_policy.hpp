// What to do when a sync fails: which failures are worth retrying, and when.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "store/store_id_key.hpp"

namespace esd::sync {

enum class failure_kind {
  transient,  // connect errors, timeouts, 5xx, 429, malformed answers: retry with backoff
  permanent,  // a dead or malformed key, a 400: retrying cannot help
};

struct sync_failure {
  failure_kind kind = failure_kind::transient;
  std::string reason;  // for user_status.last_error: plain words, never a key or token
  std::optional<std::chrono::seconds> retry_after;  // the Store's Retry-After, when it sent one
  std::optional<store::key_kind> dead_key;           // the Store refused this key of the player's
  std::string code = "other";  // short and stable, for metrics: bad_key, dead_key, expired_key, no_key,
                               // throttled, budget, store_error, store_rejected, unreachable,
                               // bad_answer, entra
};

inline sync_failure permanent(std::string code, std::string reason) {
  return {failure_kind::permanent, std::move(reason), std::nullopt, std::nullopt, std::move(code)};
}
inline sync_failure transient(std::string code, std::string reason,
                              std::optional<std::chrono::seconds> after = std::nullopt) {
  return {failure_kind::transient, std::move(reason), after, std::nullopt, std::move(code)};
}

// Exponential backoff with a cap and jitter: attempt 1 waits about base, each next one twice as long,
// never more than cap; the actual wait is drawn from [d/2, d] so retries of many players spread out.
// A Retry-After from the Store is a floor: we never come back sooner.
std::chrono::milliseconds retry_delay(int attempt, std::chrono::seconds base, std::chrono::seconds cap,
                                      std::optional<std::chrono::seconds> retry_after, std::mt19937_64& rng);

// Parses a Retry-After header: delta-seconds or an HTTP-date. nullopt when absent or malformed.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

// The Retry-After of an answer's headers (names lower-cased), parsed as above; nullopt when absent.
std::optional<std::chrono::seconds> retry_after_of(const std::map<std::string, std::string>& headers);

}  // namespace esd::sync
