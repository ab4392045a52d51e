// The pieces every date text form is read and written with (the Store's, PostgreSQL's): a strict
// cursor over the text, fractions truncated to microseconds, the "no end" clamp, and the UTC calendar
// fields of an instant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "store/civil_time.hpp"
#include "store/store_date.hpp"

namespace esd::store {

constexpr std::int64_t micros_per_second = 1'000'000;
constexpr std::int64_t micros_per_minute = 60 * micros_per_second;
constexpr std::int64_t micros_per_hour = 60 * micros_per_minute;
constexpr std::int64_t micros_per_day = 24 * micros_per_hour;

// 9999-12-31T23:59:59.999999Z: the last microsecond we can represent in the Store's range. The .NET
// "no end" value (…59.9999999) truncates to exactly this, so everything from here on means "no end".
constexpr std::int64_t no_end_threshold =
    days_from_civil(9999, 12, 31) * micros_per_day + 86'400 * micros_per_second - 1;

// A forward-only reader over the text; every accessor fails (returns false) rather than reading past
// the end, so a truncated date is simply malformed.
struct cursor {
  std::string_view s;
  std::size_t pos = 0;

  bool done() const { return pos == s.size(); }
  bool peek(char c) const { return pos < s.size() && s[pos] == c; }
  bool eat(char c) {
    if (!peek(c)) return false;
    ++pos;
    return true;
  }
  bool eat(std::string_view lit) {
    if (s.substr(pos, lit.size()) != lit) return false;
    pos += lit.size();
    return true;
  }
  // Exactly n ASCII digits (from_chars alone would accept a sign or a shorter run).
  bool digits(int n, int& out) {
    if (s.size() - pos < static_cast<std::size_t>(n)) return false;
    int v = 0;
    for (int i = 0; i < n; ++i) {
      char c = s[pos + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    pos += n;
    out = v;
    return true;
  }
  // A run of min..max digits; returns how many were read (0 on failure).
  int digit_run(int min, int max) const {
    int n = 0;
    while (pos + n < s.size() && n < max + 1 && s[pos + n] >= '0' && s[pos + n] <= '9') ++n;
    return (n < min || n > max) ? 0 : n;
  }
};

// ".fffffff" with 1..max_digits digits, truncated (never rounded) to microseconds. Truncation keeps the
// "no end" value below year 10000 and makes parse(format(t)) == t.
inline bool read_fraction(cursor& c, int max_digits, std::int64_t& micros) {
  micros = 0;
  if (!c.eat('.')) return true;
  int n = c.digit_run(1, max_digits);
  if (n == 0) return false;
  std::int64_t scale = 100'000;
  for (int i = 0; i < n; ++i, scale /= 10) {
    if (scale > 0) micros += (c.s[c.pos + i] - '0') * scale;
  }
  c.pos += n;
  return true;
}

inline bool valid_date(int y, int m, int d) { return m >= 1 && m <= 12 && d >= 1 && d <= last_day_of_month(y, m); }

inline store_time clamp_no_end(std::int64_t micros) {
  return micros >= no_end_threshold ? store_time::infinity() : store_time{micros};
}

// The UTC calendar fields of an instant, "YYYY-MM-DD?HH:MM:SS.f..." with frac_digits (6 or 7) digits.
std::string format_utc_fields(std::int64_t micros, char date_time_sep, int frac_digits);

}  // namespace esd::store
