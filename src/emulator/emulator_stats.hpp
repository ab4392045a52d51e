// What the emulator has seen, for tests and benchmarks to assert on (GET /_emulator/stats).
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace esd::emulator {

struct emulator_stats {
  std::uint64_t token_requests = 0;
  std::uint64_t renewals = 0;  // renew requests handled (every outcome)
  std::uint64_t renewals_succeeded = 0;
  std::uint64_t collections_queries = 0;  // query pages requested (every outcome)
  std::uint64_t items_served = 0;
  std::uint64_t grant_requests = 0;      // POST /v6.0/purchases/grant handled (every outcome)
  std::uint64_t grants_performed = 0;    // orders actually created (the collection changed)
  std::uint64_t grant_replays = 0;       // repeats of an order answered from the stored order
  std::uint64_t grant_conflicts = 0;     // an orderId reused for another product: 409
  std::uint64_t recurrence_queries = 0;  // recurrences query pages requested (every outcome)
  std::uint64_t subscriptions_served = 0;
  std::uint64_t consume_requests = 0;    // POST /v6.0/collections/consume handled (every outcome)
  std::uint64_t consumes_performed = 0;  // items actually consumed (quantity set to 0)
  std::uint64_t consume_replays = 0;     // repeats of a tracking id: 204, nothing changed
  std::uint64_t tls_handshakes = 0;
  std::map<std::string, std::uint64_t> requests_by_path;
  std::map<std::string, std::uint64_t> status_counts;    // "200", "401", ...
  std::map<std::string, std::uint64_t> faults_injected;  // by mode
  std::map<std::string, std::uint64_t> queries_by_user;
  std::map<std::string, std::optional<std::string>> last_modified_after;  // as received, or null
  // Store requests (query, renew, grant, recurrences, consume) for a player that arrived while another
  // request for the same player was still being answered: a client that syncs one player with sequential
  // requests never causes one.
  std::uint64_t user_overlaps = 0;
  std::uint64_t retry_afters_sent = 0;        // 429 answers with Retry-After to a request for a known player
  // Store requests for a player that arrived before the Retry-After last sent for that player had passed
  // (counted from the moment the 429 started going out).
  std::uint64_t early_after_retry_after = 0;

  boost::json::value to_json() const;
};

}  // namespace esd::emulator
