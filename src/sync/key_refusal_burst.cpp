#include "sync/key_refusal_burst.hpp"

#include <algorithm>

namespace esd::sync {

key_refusal_burst::judgement key_refusal_burst::refused(const std::string& user_id, clock::time_point now) {
  while (!recent_.empty() && now - recent_.front().first >= window_) recent_.pop_front();
  auto same = std::find_if(recent_.begin(), recent_.end(), [&](const auto& r) { return r.second == user_id; });
  if (same != recent_.end()) recent_.erase(same);
  recent_.emplace_back(now, user_id);
  if (recent_.size() > max_players_ + 1) recent_.pop_front();
  const bool burst = recent_.size() > max_players_;
  const bool began = burst && !in_burst_;
  in_burst_ = burst;
  if (!burst) return judgement::stands;
  return began ? judgement::burst_began : judgement::in_burst;
}

}  // namespace esd::sync
