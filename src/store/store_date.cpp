#include "store/store_date.hpp"

#include <charconv>

#include "store/date_fields.hpp"

namespace esd::store {
namespace {

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

std::string format_utc(store_time t) {
  if (t.is_infinity()) return "infinity UTC";
  return format_utc_fields(t.micros, ' ', 6).substr(0, 19) + " UTC";
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
