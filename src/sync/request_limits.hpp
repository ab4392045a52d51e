// Politeness towards the Store: a budget of requests per player within a sliding window (the Store
// allows about 200 operations per 300 s per user and answers 429 beyond), and a global rate limit.
// Pure policies on a caller-supplied clock, so they are tested in isolation; store_gateway waits on them.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>
#include <vector>

namespace esd::sync {

using steady_time = std::chrono::steady_clock::time_point;

// At most `requests` per player within any `window`: an exact sliding log per player. Players idle for a
// whole window are forgotten, so memory follows the players active within one window.
class player_budget {
 public:
  player_budget(int requests, std::chrono::milliseconds window) : limit_(requests), window_(window) {}

  // Takes one request for the player if the budget allows it now (returns 0), otherwise takes nothing
  // and returns how long until it will.
  std::chrono::milliseconds take(const std::string& user, steady_time now);

  // The player's latest request was answered now: its slot counts from now (the Store counted it somewhere
  // between the take and now). A player's requests go one at a time, so the latest slot is that request's.
  void settle(const std::string& user, steady_time now);

  // Requests the player has made within the window ending now.
  int used(const std::string& user, steady_time now) const;
  std::size_t tracked_players() const { return log_.size(); }

 private:
  void forget_idle(steady_time now);

  int limit_;
  std::chrono::milliseconds window_;
  std::unordered_map<std::string, std::vector<steady_time>> log_;  // oldest first
  steady_time next_cleanup_{};
};

// A token bucket: `per_second` requests per second on average, bursts of up to `per_second` (one
// second's worth). per_second 0 means no limit.
class rate_limiter {
 public:
  explicit rate_limiter(int per_second) : rate_(per_second), tokens_(per_second) {}

  // Takes one token if there is one (returns 0), else returns how long until there will be.
  std::chrono::milliseconds take(steady_time now);

 private:
  int rate_;
  double tokens_;
  steady_time last_{};
  bool started_ = false;
};

}  // namespace esd::sync
