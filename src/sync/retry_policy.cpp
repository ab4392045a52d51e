#include "sync/retry_policy.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

namespace esd::sync {

std::chrono::milliseconds retry_delay(int attempt, std::chrono::seconds base, std::chrono::seconds cap,
                                      std::optional<std::chrono::seconds> retry_after, std::mt19937_64& rng) {
  using std::chrono::milliseconds;
  const int doublings = std::clamp(attempt - 1, 0, 30);
  const long long cap_ms = std::max<long long>(milliseconds(cap).count(), 1);
  long long d = milliseconds(base).count();
  for (int i = 0; i < doublings && d < cap_ms; ++i) d *= 2;
  d = std::clamp<long long>(d, 1, cap_ms);
  long long wait = std::uniform_int_distribution<long long>(d / 2, d)(rng);
  if (retry_after) wait = std::max<long long>(wait, milliseconds(*retry_after).count());
  return milliseconds(wait);
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  long long secs = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
  if (ec == std::errc() && p == value.data() + value.size()) {
    if (secs < 0) return std::nullopt;
    return std::chrono::seconds(std::min<long long>(secs, 86'400));
  }
  // HTTP-date, IMF-fixdate form: "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto delta = std::chrono::duration_cast<std::chrono::seconds>(at - now);
  return std::clamp(delta, std::chrono::seconds(0), std::chrono::seconds(86'400));
}

std::optional<std::chrono::seconds> retry_after_of(const std::map<std::string, std::string>& headers) {
  const auto it = headers.find("retry-after");
  if (it == headers.end()) return std::nullopt;
  return parse_retry_after(it->second, std::chrono::system_clock::now());
}

}  // namespace esd::sync
