// Keys of many players refused within a short time are taken as a problem on the Store's side (an
// outage, a token it stops honouring early), not as that many players' dead keys: past a threshold of
// distinct players within a sliding window, further refusals are held back (the key is kept and the sync
// retried with backoff) until the rate falls below it again. A genuinely dead key held back this way is
// judged again on its retry.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <string>
#include <utility>

namespace esd::sync {

class key_refusal_burst {
 public:
  using clock = std::chrono::steady_clock;

  // More than max_players distinct players refused within window is a burst.
  explicit key_refusal_burst(std::size_t max_players = 10, std::chrono::seconds window = std::chrono::seconds(60))
      : max_players_(max_players), window_(window) {}

  enum class judgement {
    stands,       // few refusals lately: the key is dead
    burst_began,  // this refusal made it a burst: hold it back, and say so
    in_burst,     // a burst goes on: hold it back
  };

  // Records a refusal of this player's key at `now` and judges it.
  judgement refused(const std::string& user_id, clock::time_point now);

  std::size_t max_players() const { return max_players_; }
  std::chrono::seconds window() const { return window_; }

 private:
  std::size_t max_players_;
  std::chrono::seconds window_;
  // The most recent refusal of each of the latest (at most max_players + 1) distinct players, oldest
  // first: whether more than max_players fall within the window needs no more, so a burst of any size
  // costs a fixed amount of memory.
  std::deque<std::pair<clock::time_point, std::string>> recent_;
  bool in_burst_ = false;
};

}  // namespace esd::sync
