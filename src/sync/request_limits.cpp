#include "sync/request_limits.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>

namespace esd::sync {

using std::chrono::milliseconds;

namespace {

milliseconds ceil_ms(std::chrono::steady_clock::duration d) {
  return std::chrono::ceil<milliseconds>(d);
}

}  // namespace

player_budget::player_budget(int requests, milliseconds window)
    : limit_(requests),
      window_(std::max(window, milliseconds(1))),
      width_(std::max<milliseconds>(milliseconds(1), (window_ + milliseconds(buckets - 1)) / buckets)),
      cells_(static_cast<std::size_t>(buckets + 1) * rows * columns, 0),
      slot_bucket_(buckets + 1, -1) {}

player_budget::hashed player_budget::hash(const std::string& user) {
  const std::uint64_t h = std::hash<std::string>{}(user);
  // Two columns from the two halves, the second mixed again so that short hashes still differ.
  const std::uint64_t h2 = (h >> 32) ^ ((h * 0x9E3779B97F4A7C15ull) >> 29);
  return hashed{{static_cast<std::size_t>(h & (columns - 1)), static_cast<std::size_t>(h2 & (columns - 1))}};
}

std::int64_t player_budget::elapsed_ms(steady_time t) const {
  return t <= epoch_ ? 0 : std::chrono::duration_cast<milliseconds>(t - epoch_).count();
}

std::int64_t player_budget::bucket_of(steady_time t) const { return elapsed_ms(t) / width_.count(); }

// A request in bucket b counts until the end of b plus the window; buckets * width >= window, so at most
// buckets + 1 are live at once, one slot each.
std::int64_t player_budget::first_live(steady_time now) const {
  // The smallest b with (b + 1) * width + window > elapsed.
  const auto past_window = elapsed_ms(now) - window_.count();
  return past_window < 0 ? 0 : past_window / width_.count();
}

int player_budget::counted(const hashed& h, steady_time now) const {
  int n = 0;
  for (auto b = first_live(now), last = bucket_of(now); b <= last; ++b) n += count_in(b, h);
  return n;
}

std::uint16_t* player_budget::cells_of(std::int64_t bucket, int row) {
  const auto slot = static_cast<std::size_t>(bucket % (buckets + 1));
  if (slot_bucket_[slot] != bucket) {  // a bucket long gone held this slot: start it afresh
    std::fill_n(cells_.begin() + static_cast<std::ptrdiff_t>(slot * rows * columns), rows * columns, 0);
    slot_bucket_[slot] = bucket;
  }
  return cells_.data() + (slot * rows + static_cast<std::size_t>(row)) * columns;
}

int player_budget::count_in(std::int64_t bucket, const hashed& h) const {
  const auto slot = static_cast<std::size_t>(bucket % (buckets + 1));
  if (slot_bucket_[slot] != bucket) return 0;
  int least = INT32_MAX;
  for (int r = 0; r < rows; ++r)
    least = std::min<int>(least, cells_[(slot * rows + static_cast<std::size_t>(r)) * columns + h.column[r]]);
  return least;
}

void player_budget::drop_unanswered(std::vector<steady_time>& takes, steady_time now) const {
  takes.erase(takes.begin(),
              std::find_if(takes.begin(), takes.end(), [&](steady_time t) { return t + window_ > now; }));
}

void player_budget::expire_pending(steady_time now) {
  if (now < next_sweep_) return;
  next_sweep_ = now + window_;
  for (auto it = pending_.begin(); it != pending_.end();) {
    drop_unanswered(it->second, now);
    it = it->second.empty() ? pending_.erase(it) : std::next(it);
  }
}

milliseconds player_budget::take(const std::string& user, steady_time now) {
  if (!started_) {
    started_ = true;
    epoch_ = now;
  }
  expire_pending(now);
  const hashed h = hash(user);
  const int answered = counted(h, now);
  auto pending = pending_.find(user);
  if (pending != pending_.end()) drop_unanswered(pending->second, now);
  const int in_flight = pending == pending_.end() ? 0 : static_cast<int>(pending->second.size());
  if (answered + in_flight < limit_) {
    if (pending == pending_.end()) pending = pending_.emplace(user, std::vector<steady_time>{}).first;
    pending->second.push_back(now);
    return milliseconds(0);
  }

  // Wait until enough requests have left: the oldest buckets first, then requests still unanswered, which
  // leave at their take plus the window unless answered before (then they count afresh, and the caller
  // asks again).
  int excess = answered + in_flight - limit_ + 1;
  for (auto b = first_live(now), last = bucket_of(now); b <= last; ++b) {
    excess -= count_in(b, h);
    if (excess <= 0) {
      const auto leaves = epoch_ + (b + 1) * width_ + window_;
      return std::max(ceil_ms(leaves - now), milliseconds(1));
    }
  }
  if (pending == pending_.end() || in_flight == 0) return width_;  // cannot happen with limit >= 1
  const auto& times = pending->second;
  const auto leaves = times[static_cast<std::size_t>(std::min<int>(excess, in_flight) - 1)] + window_;
  return std::max(ceil_ms(leaves - now), milliseconds(1));
}

void player_budget::settle(const std::string& user, steady_time now) {
  auto pending = pending_.find(user);
  if (pending == pending_.end() || pending->second.empty()) return;
  pending->second.erase(pending->second.begin());
  if (pending->second.empty()) pending_.erase(pending);

  // Conservative update: raise each of the player's counters only as far as its new count, so that a
  // counter shared with other players grows no more than needed.
  const hashed h = hash(user);
  const std::int64_t b = bucket_of(now);
  const int next = count_in(b, h) + 1;
  for (int r = 0; r < rows; ++r) {
    std::uint16_t& cell = cells_of(b, r)[h.column[r]];
    cell = static_cast<std::uint16_t>(std::min<int>(std::max<int>(cell, next), UINT16_MAX));
  }
}

int player_budget::used(const std::string& user, steady_time now) const {
  if (!started_) return 0;
  int n = counted(hash(user), now);
  if (auto pending = pending_.find(user); pending != pending_.end()) {
    n += static_cast<int>(std::count_if(pending->second.begin(), pending->second.end(),
                                        [&](steady_time t) { return t + window_ > now; }));
  }
  return n;
}

milliseconds rate_limiter::take(steady_time now) {
  if (rate_ <= 0) return milliseconds(0);
  if (!started_) {
    started_ = true;
    last_ = now;
  }
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  if (elapsed > 0) {
    tokens_ = std::min<double>(rate_, tokens_ + elapsed * rate_);
    last_ = now;
  }
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return milliseconds(0);
  }
  const double seconds = (1.0 - tokens_) / rate_;
  return std::max(milliseconds(1), milliseconds(static_cast<long long>(std::ceil(seconds * 1000.0))));
}

}  // namespace esd::sync
