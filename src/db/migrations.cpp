#include "db/migrations.hpp"

#include <algorithm>

namespace esd::db {

namespace {
// pg_advisory_xact_lock key for `migrate`: any constant unique to this program.
constexpr long long migrate_lock_key = 0x6573645f6d6967LL;  // "esd_mig"
}  // namespace

int latest_schema_version() {
  int v = 0;
  for (const auto& m : embedded_migrations()) v = std::max(v, m.version);
  return v;
}

int current_schema_version(pqxx::connection& c) {
  pqxx::read_transaction tx(c);
  auto exists = tx.exec1("SELECT to_regclass('entitlement_sync.schema_migrations') IS NOT NULL")[0].as<bool>();
  if (!exists) return 0;
  return tx.exec1("SELECT coalesce(max(version), 0) FROM entitlement_sync.schema_migrations")[0].as<int>();
}

std::vector<std::string> apply_migrations(pqxx::connection& c) {
  std::vector<std::string> applied;
  pqxx::work tx(c);
  tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(migrate_lock_key) + ")");
  tx.exec(
      "CREATE SCHEMA IF NOT EXISTS entitlement_sync; "
      "CREATE TABLE IF NOT EXISTS entitlement_sync.schema_migrations ("
      "  version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
  auto done = tx.exec("SELECT version FROM entitlement_sync.schema_migrations");
  std::vector<int> have;
  for (const auto& row : done) have.push_back(row[0].as<int>());
  for (const auto& m : embedded_migrations()) {
    if (std::find(have.begin(), have.end(), m.version) != have.end()) continue;
    tx.exec(m.sql);
    tx.exec_params("INSERT INTO entitlement_sync.schema_migrations (version, name) VALUES ($1, $2)", m.version,
                   std::string(m.name));
    applied.emplace_back(m.name);
  }
  tx.commit();
  return applied;
}

}  // namespace esd::db
