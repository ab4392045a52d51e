// Fuzzes the date parsers (src/store/store_date.hpp, src/db/pg_timestamp.hpp): parse_store_date,
// from_pg_timestamptz and parse_timespan_micros, all on the same input text.
//
// Invariants checked (each is promised by store_date.hpp or by the comments in store_date.cpp):
// - a parsed Store date is infinity or lies before 9999-12-31T23:59:59.999999Z ("no end" threshold), and
//   not earlier than 0001-01-01T00:00:00Z moved by the largest offset (18:00) the parser accepts;
// - parse(format(t)) == t for every instant format_store_date can write in the Store's form (year 1 on:
//   the Store's form has no year 0), and the written form is 33 characters;
// - from_pg_timestamptz(to_pg_timestamptz(t)) == t for every parsed value, from either parser;
// - "infinity" round-trips through both forms.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "db/pg_timestamp.hpp"
#include "fuzz_check.hpp"
#include "store/store_date.hpp"

namespace {

using esd::store::store_time;

constexpr std::int64_t micros_per_hour = 3'600'000'000LL;
constexpr std::int64_t year_one = -62'135'596'800'000'000LL;           // 0001-01-01T00:00:00Z
constexpr std::int64_t no_end_threshold = 253'402'300'799'999'999LL;  // 9999-12-31T23:59:59.999999Z

void check_round_trips(store_time t) {
  // The PostgreSQL literal covers every instant, BC years included.
  std::string pg = esd::db::to_pg_timestamptz(t);
  auto back_from_pg = esd::db::from_pg_timestamptz(pg);
  FUZZ_CHECK_MSG(back_from_pg && *back_from_pg == t, pg);

  if (t.is_infinity() || t.micros >= year_one) {
    std::string s = esd::store::format_store_date(t);
    FUZZ_CHECK_MSG(s.size() == 33, s);
    auto back = esd::store::parse_store_date(s);
    FUZZ_CHECK_MSG(back && *back == t, s);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto t = esd::store::parse_store_date(text)) {
    FUZZ_CHECK(t->is_infinity() || t->micros < no_end_threshold);
    FUZZ_CHECK(t->micros >= year_one - 18 * micros_per_hour);
    check_round_trips(*t);
  }

  if (auto t = esd::db::from_pg_timestamptz(text)) {
    FUZZ_CHECK(t->is_infinity() || t->micros < no_end_threshold);
    check_round_trips(*t);
  }

  // A TimeSpan has at most 8 day digits (TimeSpan.MaxValue is 10675199 days); all that can go wrong
  // here is a crash or an overflow, which the sanitizers report.
  (void)esd::store::parse_timespan_micros(text);
  return 0;
}
