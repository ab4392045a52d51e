// SIGHUP through the real binary: every key changed in the file is named in the reload's log line, under
// "applied:" when it takes effect at once, or under "changed but needs a restart:".
#define BOOST_TEST_MODULE reload
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <fstream>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

namespace {

// The reload's log line, split at "; changed but needs a restart: ".
struct reload_line {
  std::string applied;
  std::string needs_restart;
};

std::optional<reload_line> find_reload_line(const std::string& log) {
  const auto start = log.find("reloaded ");
  if (start == std::string::npos) return std::nullopt;
  const auto end = log.find('\n', start);
  const std::string line = log.substr(start, end == std::string::npos ? std::string::npos : end - start);
  const std::string restart_marker = "; changed but needs a restart: ";
  const auto applied_at = line.find("applied: ");
  const auto restart_at = line.find(restart_marker);
  if (applied_at == std::string::npos) return std::nullopt;
  reload_line r;
  r.applied = line.substr(applied_at, restart_at == std::string::npos ? std::string::npos : restart_at - applied_at);
  if (restart_at != std::string::npos) r.needs_restart = line.substr(restart_at + restart_marker.size());
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_changed_key_is_named_applied_or_needing_a_restart) {
  environment env;
  background_process daemon({daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "daemon.log");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("info started", 60s), daemon.log());
  {
    std::ofstream out(env.config, std::ios::app);
    out << "\n[store]\nsubscriptions = off\n"
        << "[metrics]\nlisten = 127.0.0.1:0\n"
        << "[sync]\ndrain_grace = 5s\npoll_interval = 3s\n";
  }
  daemon.signal(SIGHUP);
  BOOST_TEST_REQUIRE(daemon.wait_for_log("reloaded ", 30s), daemon.log());
  const auto line = find_reload_line(daemon.log());
  BOOST_TEST_REQUIRE(line.has_value(), daemon.log());

  // The live key, with its old and new value.
  BOOST_TEST(line->applied.find("sync poll_interval 10s -> 3s") != std::string::npos, line->applied);
  // The keys a running daemon does not take up, each by name.
  for (const char* key : {"[store] subscriptions", "[metrics] listen", "[sync] drain_grace"}) {
    BOOST_TEST(line->needs_restart.find(key) != std::string::npos, key << " in: " << line->needs_restart);
    BOOST_TEST(line->applied.find(key) == std::string::npos, key << " in: " << line->applied);
  }
  BOOST_TEST(line->needs_restart.find("poll_interval") == std::string::npos, line->needs_restart);
  BOOST_TEST(line->applied.find("drain_grace") == std::string::npos, line->applied);
  // Named as needing a restart, and indeed not taken up: no metrics endpoint was opened.
  BOOST_TEST(daemon.log().find("metrics: listening") == std::string::npos, daemon.log());

  BOOST_TEST(daemon.running());
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(30s).value_or(-1) == 0, daemon.log());
}
