#include "store/store_date.hpp"

#include <charconv>
#include <cstdio>

#include "store/civil_time.hpp"

namespace esd::store {
namespace {

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
bool read_fraction(cursor& c, int max_digits, std::int64_t& micros) {
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

bool valid_date(int y, int m, int d) { return m >= 1 && m <= 12 && d >= 1 && d <= last_day_of_month(y, m); }

// "Z", "+HH:MM" or "-HH:MM" (also "+HHMM", which ISO 8601 allows); returns the offset east of UTC.
bool read_iso_offset(cursor& c, std::int64_t& offset_micros) {
  if (c.eat('Z')) {
    offset_micros = 0;
    return true;
  }
  int sign = c.eat('+') ? 1 : c.eat('-') ? -1 : 0;
  int hh = 0, mm = 0;
  if (sign == 0 || !c.digits(2, hh)) return false;
  c.eat(':');
  if (!c.digits(2, mm) || mm > 59) return false;
  if (hh * 60 + mm > 18 * 60) return false;
  offset_micros = sign * (hh * micros_per_hour + mm * micros_per_minute);
  return true;
}

store_time clamp_no_end(std::int64_t micros) {
  return micros >= no_end_threshold ? store_time::infinity() : store_time{micros};
}

// The WCF form "/Date(ms)/" or "/Date(ms+HHMM)/". WCF writes the instant in UTC milliseconds; the
// offset only records the sender's zone, so it does not move the instant.
std::optional<store_time> parse_wcf_date(std::string_view text) {
  bool escaped = text.starts_with("\\/");
  cursor c{text};
  if (!c.eat(escaped ? "\\/Date(" : "/Date(")) return std::nullopt;
  std::size_t start = c.pos;
  c.eat('-');
  if (c.digit_run(1, 15) == 0) return std::nullopt;
  std::int64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data() + start, text.data() + text.size(), ms);
  if (ec != std::errc{}) return std::nullopt;
  c.pos = static_cast<std::size_t>(end - text.data());
  if (c.peek('+') || c.peek('-')) {
    ++c.pos;
    int zone = 0;
    if (!c.digits(4, zone)) return std::nullopt;
  }
  if (!c.eat(escaped ? ")\\/" : ")/") || !c.done()) return std::nullopt;
  // 15 digits of milliseconds is about +-31700 years, far inside int64 microseconds.
  std::int64_t micros = ms * 1000;
  if (micros < days_from_civil(1, 1, 1) * micros_per_day) return std::nullopt;
  return clamp_no_end(micros);
}

// The UTC calendar fields of an instant, "YYYY-MM-DD?HH:MM:SS.f..." with frac_digits (6 or 7) digits.
std::string format_utc_fields(std::int64_t micros, char date_time_sep, int frac_digits) {
  // Remainder first: floor_div(micros, D) * D could overflow for instants near the int64 minimum.
  std::int64_t in_day = micros % micros_per_day;
  if (in_day < 0) in_day += micros_per_day;
  civil_date d = civil_from_days(floor_div(micros, micros_per_day));
  int hh = static_cast<int>(in_day / micros_per_hour);
  int mm = static_cast<int>(in_day / micros_per_minute % 60);
  int ss = static_cast<int>(in_day / micros_per_second % 60);
  long long frac = in_day % micros_per_second;
  if (frac_digits == 7) frac *= 10;
  if (d.year >= 0 && d.year <= 9999) {  // written by hand: this runs for every date of every item stored
    char out[40];
    char* p = out;
    auto put = [&p](long long v, int width) {
      for (int i = width - 1; i >= 0; --i) {
        p[i] = static_cast<char>('0' + v % 10);
        v /= 10;
      }
      p += width;
    };
    put(d.year, 4);
    *p++ = '-';
    put(d.month, 2);
    *p++ = '-';
    put(d.day, 2);
    *p++ = date_time_sep;
    put(hh, 2);
    *p++ = ':';
    put(mm, 2);
    *p++ = ':';
    put(ss, 2);
    *p++ = '.';
    put(frac, frac_digits);
    return std::string(out, p);
  }
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02d%c%02d:%02d:%02d.%0*lld", static_cast<long long>(d.year),
                d.month, d.day, date_time_sep, hh, mm, ss, frac_digits, frac);
  return buf;
}

}  // namespace

std::optional<store_time> parse_store_date(std::string_view text) {
  if (text.starts_with("/Date(") || text.starts_with("\\/Date(")) return parse_wcf_date(text);

  cursor c{text};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!c.digits(4, y) || !c.eat('-') || !c.digits(2, mo) || !c.eat('-') || !c.digits(2, d))
    return std::nullopt;
  if (y < 1 || !valid_date(y, mo, d)) return std::nullopt;
  if (!c.eat('T') || !c.digits(2, h) || !c.eat(':') || !c.digits(2, mi)) return std::nullopt;
  // Seconds are optional: the clawback SAS token answer has "2022-12-09T02:13Z".
  std::int64_t frac = 0;
  if (c.eat(':')) {
    if (!c.digits(2, s) || !read_fraction(c, 7, frac)) return std::nullopt;
  }
  // Leap seconds (":60") never appear in .NET output; rejecting them keeps the arithmetic simple.
  if (h > 23 || mi > 59 || s > 59) return std::nullopt;
  // A date without a zone would be in the sender's local time, which we cannot know.
  std::int64_t offset = 0;
  if (!read_iso_offset(c, offset) || !c.done()) return std::nullopt;

  std::int64_t micros = days_from_civil(y, mo, d) * micros_per_day + h * micros_per_hour +
                        mi * micros_per_minute + s * micros_per_second + frac - offset;
  return clamp_no_end(micros);
}

std::string format_store_date(store_time t) {
  if (t.is_infinity()) return "9999-12-31T23:59:59.9999999+00:00";
  return format_utc_fields(t.micros, 'T', 7) + "+00:00";
}

std::string to_pg_timestamptz(store_time t) {
  if (t.is_infinity()) return "infinity";
  std::int64_t days = floor_div(t.micros, micros_per_day);
  if (civil_from_days(days).year >= 1) return format_utc_fields(t.micros, ' ', 6) + "+00";
  // PostgreSQL has no year 0 or negative years: astronomical year 0 is 1 BC. Only reachable through an
  // offset that moves 0001-01-01 backwards, but a wrong literal would be silently a different date.
  civil_date cd = civil_from_days(days);
  std::string out = format_utc_fields(t.micros, ' ', 6);
  char year_buf[32];
  std::snprintf(year_buf, sizeof year_buf, "%04lld", static_cast<long long>(1 - cd.year));
  std::size_t dash = out.find('-', 1);
  return year_buf + out.substr(dash) + "+00 BC";
}

std::optional<store_time> from_pg_timestamptz(std::string_view text) {
  if (text == "infinity") return store_time::infinity();

  bool bc = text.ends_with(" BC");
  if (bc) text.remove_suffix(3);
  cursor c{text};
  // PostgreSQL prints years beyond 9999 with more digits; they are past "no end" and become infinity.
  int year_digits = c.digit_run(4, 6);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (year_digits == 0 || !c.digits(year_digits, y)) return std::nullopt;
  if (!c.eat('-') || !c.digits(2, mo) || !c.eat('-') || !c.digits(2, d)) return std::nullopt;
  if (y < 1) return std::nullopt;
  if (bc) y = 1 - y;  // 1 BC is astronomical year 0, a leap year
  if (!valid_date(y, mo, d)) return std::nullopt;
  if (!c.eat(' ') || !c.digits(2, h) || !c.eat(':') || !c.digits(2, mi) || !c.eat(':') || !c.digits(2, s))
    return std::nullopt;
  std::int64_t frac = 0;
  if (!read_fraction(c, 6, frac) || h > 23 || mi > 59 || s > 59) return std::nullopt;

  // "+HH", "+HH:MM" or, for historical local mean time, "+HH:MM:SS".
  int sign = c.eat('+') ? 1 : c.eat('-') ? -1 : 0;
  int oh = 0, om = 0, os = 0;
  if (sign == 0 || !c.digits(2, oh)) return std::nullopt;
  if (c.eat(':') && (!c.digits(2, om) || om > 59)) return std::nullopt;
  if (c.eat(':') && (!c.digits(2, os) || os > 59)) return std::nullopt;
  if (!c.done() || oh > 18) return std::nullopt;
  // Six-digit years (PostgreSQL prints up to 294276 AD) would overflow the microseconds below: AD they are
  // all far past "no end"; BC PostgreSQL prints none (its range starts in 4714 BC).
  if (year_digits == 6) return bc ? std::nullopt : std::optional(store_time::infinity());
  std::int64_t offset = sign * (oh * micros_per_hour + om * micros_per_minute + os * micros_per_second);

  std::int64_t micros = days_from_civil(y, mo, d) * micros_per_day + h * micros_per_hour +
                        mi * micros_per_minute + s * micros_per_second + frac - offset;
  return clamp_no_end(micros);
}

std::optional<std::int64_t> parse_timespan_micros(std::string_view text) {
  // .NET's constant ("c") format: [-][d.]hh:mm:ss[.fffffff]. A leading run of digits followed by '.' is
  // the day count; followed by ':' it is the hours.
  cursor c{text};
  bool negative = c.eat('-');
  std::int64_t days = 0;
  int lead = c.digit_run(1, 8);  // TimeSpan.MaxValue is 10675199 days
  if (lead == 0) return std::nullopt;
  if (c.pos + lead < text.size() && text[c.pos + lead] == '.') {
    auto [p, ec] = std::from_chars(text.data() + c.pos, text.data() + c.pos + lead, days);
    if (ec != std::errc{}) return std::nullopt;
    c.pos += lead + 1;
    (void)p;
  }
  int h = 0, m = 0, s = 0;
  if (!c.digits(2, h) || !c.eat(':') || !c.digits(2, m) || !c.eat(':') || !c.digits(2, s))
    return std::nullopt;
  if (h > 23 || m > 59 || s > 59) return std::nullopt;
  std::int64_t frac = 0;
  if (!read_fraction(c, 7, frac) || !c.done()) return std::nullopt;
  std::int64_t total =
      days * micros_per_day + h * micros_per_hour + m * micros_per_minute + s * micros_per_second + frac;
  return negative ? -total : total;
}

}  // namespace esd::store
