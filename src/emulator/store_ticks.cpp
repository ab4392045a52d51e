#include "emulator/store_ticks.hpp"

#include <chrono>

#include "store/store_date.hpp"

namespace esd::emulator {

namespace {

// The 7th fractional digit of an ISO 8601 date, which microsecond parsing drops; 0 when absent.
int seventh_fraction_digit(std::string_view text) {
  const auto t = text.find('T');
  if (t == std::string_view::npos) return 0;
  const auto dot = text.find('.', t);
  if (dot == std::string_view::npos) return 0;
  std::size_t i = dot + 1;
  int n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (++n == 7) return text[i] - '0';
    ++i;
  }
  return 0;
}

}  // namespace

std::optional<std::int64_t> parse_ticks(std::string_view text) {
  const auto t = store::parse_store_date(text);
  if (!t) return std::nullopt;
  if (t->is_infinity()) return no_end_ticks;
  return t->micros * 10 + seventh_fraction_digit(text);
}

std::string format_ticks(std::int64_t ticks) {
  if (ticks == no_end_ticks) return "9999-12-31T23:59:59.9999999+00:00";
  std::int64_t micros = ticks / 10;
  std::int64_t rest = ticks % 10;
  if (rest < 0) {
    rest += 10;
    micros -= 1;
  }
  std::string s = store::format_store_date(store::store_time{micros});
  // format_store_date writes "YYYY-MM-DDTHH:MM:SS.ffffff0+00:00": put the tick digit in the 7th place.
  const auto dot = s.find('.');
  if (dot != std::string::npos && dot + 7 < s.size()) s[dot + 7] = static_cast<char>('0' + rest);
  return s;
}

std::int64_t now_ticks() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count() / 100;
}

}  // namespace esd::emulator
