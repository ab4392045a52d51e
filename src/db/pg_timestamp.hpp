// store_time as PostgreSQL timestamptz text: the literal we bind (exact to the microsecond, never
// rounded by the server) and the form the server prints back in our sessions' ISO DateStyle.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "store/store_date.hpp"

namespace pqxx {
class field;
}

namespace esd::db {

// A literal PostgreSQL accepts for timestamptz without rounding: "2015-09-22 19:22:51.206872+00",
// or "infinity".
std::string to_pg_timestamptz(store::store_time t);

// Parses what PostgreSQL prints for timestamptz in ISO DateStyle ("2015-09-22 19:22:51.206872+00",
// "... +05:30", "infinity"). nullopt if malformed.
std::optional<store::store_time> from_pg_timestamptz(std::string_view text);
// The same for a timestamptz column; nullopt also when it is NULL.
std::optional<store::store_time> from_pg_timestamptz(const pqxx::field& f);

}  // namespace esd::db
