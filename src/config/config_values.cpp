#include "config/config_values.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "config/config.hpp"

namespace esd::config {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<millis> parse_duration(const std::string& text) {
  // Digits, then an optional unit; no sign, no fraction, no space, so "1.5h" or "-5s" are malformed
  // rather than silently something else.
  std::string_view s = text;
  std::size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + digits, n);
  if (ec != std::errc{}) return std::nullopt;
  std::string_view unit = s.substr(digits);
  std::int64_t scale = 0;
  if (unit == "ms")
    scale = 1;
  else if (unit.empty() || unit == "s")
    scale = 1000;
  else if (unit == "m")
    scale = 60 * 1000;
  else if (unit == "h")
    scale = 3600 * 1000;
  else if (unit == "d")
    scale = 86400 * 1000;
  else
    return std::nullopt;
  if (n > std::numeric_limits<std::int64_t>::max() / scale) return std::nullopt;
  return millis{n * scale};
}

std::string describe_duration(millis d) {
  auto ms = d.count();
  if (ms % 86'400'000 == 0 && ms != 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms % 3'600'000 == 0 && ms != 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0 && ms != 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string read_bytes(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t& out) {
  const std::string_view s = trim(text);
  std::size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + digits, n);
  const std::string_view unit = s.substr(digits);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "KB")
    scale = 1024;
  else if (unit == "MB")
    scale = 1024 * 1024;
  else if (unit == "GB")
    scale = 1024 * 1024 * 1024;
  const std::string range = "must be a size from " + std::to_string(min / 1024) + "KB to " +
                            std::to_string(max / (1024 * 1024)) + "MB (bytes, or with KB, MB or GB)";
  if (digits == 0 || ec != std::errc{} || scale == 0 || n > max / scale || n * scale < min) return range;
  out = n * scale;
  return {};
}

std::string read_int(std::string_view text, int min, int max, int& out) {
  const std::string range = "must be between " + std::to_string(min) + " and " + std::to_string(max);
  long long n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc::result_out_of_range) return range;
  if (ec != std::errc{} || end != text.data() + text.size()) return "is not a whole number; " + range;
  if (n < min || n > max) return range;
  out = static_cast<int>(n);
  return {};
}

std::string read_millis(std::string_view text, millis min, millis max, millis& out) {
  auto d = parse_duration(std::string(text));
  if (!d) return "is not a duration (use e.g. 250ms, 30s, 5m, 2h, 14d; a bare number means seconds)";
  if (*d < min || *d > max)
    return "must be between " + describe_duration(min) + " and " + describe_duration(max);
  out = *d;
  return {};
}

std::string read_seconds(std::string_view text, seconds min, seconds max, seconds& out) {
  millis m{};
  if (auto e = read_millis(text, min, max, m); !e.empty()) return e;
  if (m.count() % 1000 != 0) return "must be a whole number of seconds";
  out = std::chrono::duration_cast<seconds>(m);
  return {};
}

std::string read_list(std::string_view text, std::vector<std::string>& out) {
  std::vector<std::string> items;
  while (true) {
    std::size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    if (item.empty()) return "has an empty entry (write entries separated by single commas)";
    if (std::any_of(item.begin(), item.end(), is_space)) return "entries must be separated by commas";
    if (std::find(items.begin(), items.end(), item) != items.end()) {
      // The entry goes into the message: shown as config.cpp shows values, short and printable.
      std::string shown;
      for (char c : item.substr(0, 60)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
      return "lists " + shown + (item.size() > 60 ? "..." : "") + " twice";
    }
    items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  out = std::move(items);
  return {};
}

std::string read_choice(std::string_view text, std::initializer_list<std::string_view> allowed,
                        std::string& out) {
  if (std::find(allowed.begin(), allowed.end(), text) != allowed.end()) {
    out = std::string(text);
    return {};
  }
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return "must be one of " + list;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace esd::config
