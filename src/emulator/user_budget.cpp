#include "emulator/user_budget.hpp"

#include <charconv>

namespace esd::emulator {

void user_budget::configure(int operations, int window_seconds) {
  operations_ = operations;
  window_seconds_ = window_seconds;
}

int user_budget::admit(const std::string& user_id, clock::time_point now) {
  auto& used = used_[user_id];
  const auto window = std::chrono::seconds(window_seconds_);
  while (!used.empty() && used.front() <= now - window) used.pop_front();
  if (static_cast<int>(used.size()) < operations_) {
    used.push_back(now);
    return 0;
  }
  // The slot that frees first is the one used longest ago.
  const auto wait = used[used.size() - static_cast<std::size_t>(operations_)] + window - now;
  const auto secs = std::chrono::ceil<std::chrono::seconds>(wait).count();
  return secs < 1 ? 1 : static_cast<int>(secs);
}

bool parse_budget(std::string_view text, int& operations, int& window_seconds) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return false;
  int ops = 0, secs = 0;
  const auto a = text.substr(0, slash), b = text.substr(slash + 1);
  if (std::from_chars(a.data(), a.data() + a.size(), ops).ptr != a.data() + a.size() || a.empty())
    return false;
  if (std::from_chars(b.data(), b.data() + b.size(), secs).ptr != b.data() + b.size() || b.empty())
    return false;
  if (ops <= 0 || secs <= 0) return false;
  operations = ops;
  window_seconds = secs;
  return true;
}

}  // namespace esd::emulator
