// Store timestamps: the wire forms the Store and Entra use, parsed exactly, and the forms we write.
//
// The Store sends ISO 8601 with 0-7 fractional digits ("2015-09-22T19:22:51.2068724+00:00"), a `Z` or a
// numeric offset, sometimes without seconds ("2022-12-09T02:13Z"), the .NET "no end" value
// 9999-12-31T23:59:59.9999999+00:00, and (in requests) the WCF form "\/Date(-62135568000000)\/".
// PostgreSQL rounds the 7th digit and turns "no end" into year 10000, so we parse ourselves:
// fractions are truncated to microseconds, and "no end" becomes infinity (db/pg_timestamp.hpp writes
// and reads PostgreSQL's own form).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace esd::store {

// Microseconds since 1970-01-01T00:00:00Z. The maximum value stands for "no end" (infinity).
struct store_time {
  std::int64_t micros = 0;

  static constexpr store_time infinity() { return {std::numeric_limits<std::int64_t>::max()}; }
  constexpr bool is_infinity() const { return micros == std::numeric_limits<std::int64_t>::max(); }
  friend constexpr auto operator<=>(store_time, store_time) = default;
};

// Parses every Store form above. Returns nullopt for anything malformed or out of range
// (month 13, day 142, hour 24, offset beyond +-18:00, trailing garbage, ...).
// Any instant at or after 9999-12-31T23:59:59.999999Z is "no end" and yields infinity.
std::optional<store_time> parse_store_date(std::string_view text);

// "2015-09-22T19:22:51.2068720+00:00": the Store's own form, 7 digits, for the emulator and requests.
// infinity is written as 9999-12-31T23:59:59.9999999+00:00.
std::string format_store_date(store_time t);

// "2015-09-22 19:22:51 UTC": an instant for people to read in logs and recorded errors, to the second.
std::string format_utc(store_time t);

// A .NET TimeSpan ("09:43:52.8580690", "1.02:03:04", "-00:00:01") in microseconds; nullopt if malformed.
std::optional<std::int64_t> parse_timespan_micros(std::string_view text);

}  // namespace esd::store
