// Store timestamps at the Store's own precision: .NET ticks (100 ns), so the 7th fractional digit the
// emulator serves is real and a watermark sent back at microsecond precision compares like it would at
// the real service (an item stamped .2513155 is still "after" a watermark of .2513150).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace esd::emulator {

// 100 ns units since 1970-01-01T00:00:00Z; no_end_ticks stands for 9999-12-31T23:59:59.9999999+00:00.
constexpr std::int64_t no_end_ticks = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t ticks_per_second = 10'000'000;

// Every form parse_store_date reads (ISO 8601 with 0-7 digits, the WCF "\/Date(ms)\/" form, "no end").
std::optional<std::int64_t> parse_ticks(std::string_view text);

// "2015-09-22T19:22:51.2068724+00:00"; no_end_ticks as 9999-12-31T23:59:59.9999999+00:00.
std::string format_ticks(std::int64_t ticks);

std::int64_t now_ticks();

}  // namespace esd::emulator
