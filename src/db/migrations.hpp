// Schema migrations: the numbered files of sql/, compiled in, applied in order and recorded in
// entitlement_sync.schema_migrations, under an advisory lock so two `migrate` runs never race.
#pragma once

#include <pqxx/pqxx>

#include <string>
#include <vector>

namespace esd::db {

struct migration {
  int version;
  const char* name;
  const char* sql;
};

const std::vector<migration>& embedded_migrations();

int latest_schema_version();

// Applies every migration not yet recorded, all in one transaction. Returns the names applied.
std::vector<std::string> apply_migrations(pqxx::connection& c);

// The highest applied version, or 0 when the schema does not exist yet.
int current_schema_version(pqxx::connection& c);

}  // namespace esd::db
