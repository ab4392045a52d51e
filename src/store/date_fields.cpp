#include "store/date_fields.hpp"

#include <cstdio>

namespace esd::store {

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

}  // namespace esd::store
