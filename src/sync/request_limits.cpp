#include "sync/request_limits.hpp"

#include <algorithm>
#include <cmath>

namespace esd::sync {

using std::chrono::milliseconds;

namespace {

milliseconds ceil_ms(std::chrono::steady_clock::duration d) {
  return std::chrono::ceil<milliseconds>(d);
}

}  // namespace

void player_budget::forget_idle(steady_time now) {
  if (now < next_cleanup_) return;
  next_cleanup_ = now + window_;
  for (auto it = log_.begin(); it != log_.end();) {
    if (it->second.empty() || it->second.back() + window_ <= now)
      it = log_.erase(it);
    else
      ++it;
  }
}

milliseconds player_budget::take(const std::string& user, steady_time now) {
  forget_idle(now);
  auto& times = log_[user];
  // Drop what has left the window.
  auto first_inside = std::find_if(times.begin(), times.end(), [&](steady_time t) { return t + window_ > now; });
  times.erase(times.begin(), first_inside);
  if (static_cast<int>(times.size()) < limit_) {
    times.push_back(now);
    return milliseconds(0);
  }
  // The oldest request in the window must leave it before another may go.
  const auto wait = ceil_ms(times.front() + window_ - now);
  return std::max(wait, milliseconds(1));
}

void player_budget::settle(const std::string& user, steady_time now) {
  auto it = log_.find(user);
  if (it == log_.end() || it->second.empty()) return;
  if (it->second.back() < now) it->second.back() = now;  // still the newest, so the log stays in order
}

int player_budget::used(const std::string& user, steady_time now) const {
  auto it = log_.find(user);
  if (it == log_.end()) return 0;
  return static_cast<int>(std::count_if(it->second.begin(), it->second.end(),
                                        [&](steady_time t) { return t + window_ > now; }));
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
