// entitlement-syncd [--config FILE] [COMMAND] [OPTIONS]: run (default), run --drain, migrate, check-config.
#include <malloc.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "db/db_pool.hpp"
#include "db/migrations.hpp"
#include "ops/core_dumps.hpp"
#include "ops/log.hpp"
#include "store/key_sealing.hpp"
#include "sync/daemon.hpp"

namespace {

constexpr const char* usage_text =
    "usage: entitlement-syncd [--config FILE] [COMMAND] [OPTIONS]\n"
    "\n"
    "Keeps a game backend's entitlement tables in step with the Microsoft Store.\n"
    "\n"
    "commands:\n"
    "  run             run the daemon in the foreground until SIGTERM or SIGINT (the default)\n"
    "  run --drain     process every ready event and every retry due within [sync] drain_grace, then exit\n"
    "  migrate         create or upgrade the database schema, then exit\n"
    "  check-config    validate the config file and the files it points to (exit 2 if invalid)\n"
    "\n"
    "options:\n"
    "  --config FILE       config file (default /etc/entitlement-syncd/entitlement-syncd.conf)\n"
    "  --log-level LEVEL   debug, info, warning or error (overrides [log] level)\n"
    "  --version, --help\n";

int fail_usage(const std::string& message) {
  std::cerr << "entitlement-syncd: " << message << "\n\n" << usage_text;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything reads a secret. Nothing to do if it fails: the unit's LimitCORE=0 still holds.
  const bool no_core_dumps = esd::ops::forbid_core_dumps();
  // One event-loop thread does nearly all allocation; the database threads hand it their results. glibc
  // would give each thread its own arena (64 MB reserved apiece, and memory freed by the loop stays in
  // the arena that allocated it); two arenas keep the resident size close to what is live. The
  // operator's MALLOC_ARENA_MAX, when set, wins.
  if (!std::getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
  std::string config_path = esd::config::default_config_path;
  std::string command;
  std::string log_level_override;
  bool drain = false;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << usage_text;
      return 0;
    } else if (a == "--version") {
      std::cout << "entitlement-syncd " << ESD_VERSION_STRING << "\n";
      return 0;
    } else if (a == "--config" || a == "-c") {
      if (++i == args.size()) return fail_usage("--config needs a file name");
      config_path = args[i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--log-level") {
      if (++i == args.size()) return fail_usage("--log-level needs a level");
      log_level_override = args[i];
    } else if (a == "--drain") {
      drain = true;
    } else if (!a.empty() && a[0] != '-' && command.empty()) {
      command = a;
    } else {
      return fail_usage("unknown argument '" + a + "'");
    }
  }
  if (command.empty()) command = "run";
  if (command != "run" && command != "migrate" && command != "check-config")
    return fail_usage("unknown command '" + command + "'");
  if (drain && command != "run") return fail_usage("--drain goes with the run command");

  esd::config::config cfg;
  try {
    cfg = esd::config::load_config(config_path);
    if (command == "check-config") {
      esd::config::validate_files_and_urls(cfg);
      if (!cfg.security.key_encryption_key_file.empty()) {
        try {
          esd::store::keyring::load_file(cfg.security.key_encryption_key_file);
        } catch (const std::exception& e) {
          throw esd::config::config_error("security.key_encryption_key_file", 0,
                                          "[security] key_encryption_key_file: " + std::string(e.what()));
        }
      }
    }
  } catch (const esd::config::config_error& e) {
    std::cerr << "entitlement-syncd: invalid configuration: " << e.what() << "\n";
    return 2;
  }
  if (command == "check-config") {
    std::cout << config_path << ": configuration is valid\n";
    return 0;
  }

  esd::log::level level;
  const std::string& wanted = log_level_override.empty() ? cfg.log.level : log_level_override;
  if (!esd::log::parse_level(wanted, level)) return fail_usage("unknown log level '" + wanted + "'");
  esd::log::set_level(level);
  if (!no_core_dumps) esd::log::warning("could not turn core dumps off for this process");

  if (command == "migrate") {
    try {
      auto c = esd::db::open_connection(cfg.database.url, cfg.database.statement_timeout);
      auto applied = esd::db::apply_migrations(*c);
      for (const auto& name : applied) esd::log::info("migrate: applied " + name);
      esd::log::info("migrate: schema is at version " + std::to_string(esd::db::current_schema_version(*c)));
      return 0;
    } catch (const std::exception& e) {
      esd::log::error(std::string("migrate failed: ") + e.what());
      return 1;
    }
  }
  return esd::sync::run_daemon(cfg, esd::sync::run_options{drain});
}
