#include "db/pg_timestamp.hpp"

#include <pqxx/pqxx>

#include <cstdio>

#include "store/date_fields.hpp"

namespace esd::db {

using namespace store;

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

std::optional<store_time> from_pg_timestamptz(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return from_pg_timestamptz(std::string_view(f.c_str(), f.size()));
}

}  // namespace esd::db
