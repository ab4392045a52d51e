// Politeness towards the Store: a budget of requests per player within a sliding window (the Store
// allows about 200 operations per 300 s per user and answers 429 beyond), and a global rate limit.
// Pure policies on a caller-supplied clock, so they are tested in isolation; store_gateway waits on them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace esd::sync {

using steady_time = std::chrono::steady_clock::time_point;

// At most `requests` per player within any `window`, in memory that does not grow with the number of
// players: a login storm of millions costs the same as a quiet day.
//
// A request counts from when its answer came back (the Store saw it somewhere between the take and the
// answer), in one of 32 time buckets spanning the window; each bucket counts requests per player in a
// count-min sketch (2 rows of 16,384 16-bit counters, conservative update). Both approximations only
// ever count more, never less: a request is forgotten up to one bucket (window / 32) after the exact
// moment, and players whose counters collide with busy players' may see a few requests that are not
// theirs. So the budget is never exceeded; a player at its edge may wait a little longer than an exact log
// would make it. Requests taken but not yet answered are held exactly, per player (as many as are in
// flight); one never answered (the caller gave up before sending) counts from its take for one window.
class player_budget {
 public:
  player_budget(int requests, std::chrono::milliseconds window);

  // Takes one request for the player if the budget allows it now (returns 0), otherwise takes nothing
  // and returns how long until it may.
  std::chrono::milliseconds take(const std::string& user, steady_time now);

  // One of the player's requests was answered now: it counts from now. Without an earlier take, nothing.
  void settle(const std::string& user, steady_time now);

  // What the player has used of its budget at `now` (as counted, so possibly a little more than exact).
  int used(const std::string& user, steady_time now) const;

  // Players with a request taken and not yet answered: bounded by the requests in flight.
  std::size_t pending_players() const { return pending_.size(); }
  // The sketch's size, fixed at construction.
  std::size_t sketch_bytes() const { return cells_.size() * sizeof(cells_[0]); }

  static constexpr int buckets = 32;
  static constexpr std::size_t columns = 16384;  // per row; a power of two
  static constexpr int rows = 2;

 private:
  struct hashed {
    std::size_t column[rows];
  };
  static hashed hash(const std::string& user);
  std::int64_t elapsed_ms(steady_time t) const;  // milliseconds since the epoch, 0 before it
  std::int64_t bucket_of(steady_time t) const;
  std::uint16_t* cells_of(std::int64_t bucket, int row);
  int count_in(std::int64_t bucket, const hashed& h) const;
  std::int64_t first_live(steady_time now) const;      // the oldest bucket still counted at `now`
  int counted(const hashed& h, steady_time now) const;  // the player's answered requests, all live buckets
  void drop_unanswered(std::vector<steady_time>& takes, steady_time now) const;  // takes a window old
  void expire_pending(steady_time now);

  int limit_;
  std::chrono::milliseconds window_;
  std::chrono::milliseconds width_;   // of a bucket: window / buckets, rounded up
  bool started_ = false;
  steady_time epoch_{};               // bucket 0 starts here (the first time seen)
  std::vector<std::uint16_t> cells_;  // (buckets + 1) slots x rows x columns
  std::vector<std::int64_t> slot_bucket_;  // which bucket each slot holds now; -1: none
  std::unordered_map<std::string, std::vector<steady_time>> pending_;  // take times, oldest first
  steady_time next_sweep_{};
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
