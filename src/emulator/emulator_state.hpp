// Everything the emulator's handlers share: the fixed configuration, and the mutable state behind one
// mutex (the handlers hold it only for short, CPU-only stretches; signing happens outside it).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "emulator/catalog.hpp"
#include "emulator/emulator_stats.hpp"
#include "emulator/faults.hpp"
#include "emulator/players.hpp"
#include "emulator/store_orders.hpp"
#include "emulator/subscriptions.hpp"
#include "emulator/user_budget.hpp"

namespace esd::emulator {

struct emulator_config {
  std::string public_host = "localhost";
  std::uint16_t port = 0;  // the port actually bound, known once listening
  std::string tenant_id = "00000000-0000-0000-0000-000000000000";
  std::string client_id = "11111111-1111-1111-1111-111111111111";
  std::string client_secret = "emulator-secret";
  std::int64_t token_lifetime_seconds = 3599;
  std::int64_t key_lifetime_seconds = 30 * 86400;
  int recurrence_page_size = 2;  // subscriptions per recurrences query page, small so paging happens
  bool log_requests = false;

  std::string base_url() const { return "https://" + public_host + ":" + std::to_string(port); }
  std::string refresh_uri() const { return base_url() + "/v6.0/b2b/keys/renew"; }
};

struct emulator_state {
  std::mutex mutex;
  player_registry players;
  product_catalog catalog;          // the free products a grant may grant
  subscription_book subscriptions;  // what the recurrences query serves
  store_orders orders;              // grants and consumes done, for idempotent repeats
  user_budget budget{200, 300};
  fault_plan faults;
  emulator_stats stats;
  int latency_ms = 0;
  // Behind the userOverlaps and earlyAfterRetryAfter stats (kept when the stats are reset): Store requests
  // of each player being answered right now, and when each throttled player may ask again.
  std::unordered_map<std::string, int> requests_in_flight;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> not_before;

  // One more of a counted request, under the mutex.
  void count(std::uint64_t emulator_stats::*counter) {
    std::lock_guard lock(mutex);
    ++(stats.*counter);
  }
};

}  // namespace esd::emulator
