// Memory is bounded by the work in flight, not by the backlog: `run --drain` of a backlog of 4N players
// peaks no higher than a drain of N, with the same concurrency, through the real daemon, PostgreSQL and the
// emulator. The peak is the kernel's high-water mark of the daemon's resident set (VmHWM), read until it
// exits; only sizes are compared, never times.
#define BOOST_TEST_MODULE memory
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <stdlib.h>

#include <cstdlib>

#include <fstream>
#include <sstream>
#include <thread>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

namespace {

constexpr int concurrency = 8;
constexpr int small_backlog = 150;                // many times the concurrency already
constexpr int large_backlog = 4 * small_backlog;  // and four times that
constexpr int items_each = 20;

// VmHWM of a running process in KB; 0 once it is gone.
long long peak_rss_kb(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return 0;
}

struct memory_env {
  memory_env() {
    for (int i = 0; i < small_backlog + large_backlog; ++i) {
      const std::string user = "mem-" + std::to_string(i);
      seed.add(user, emulator_instance::make_items(user, items_each));
    }
    env = std::make_unique<environment>(
        seed.emulator_args(), "[sync]\nconcurrency = " + std::to_string(concurrency) + "\n[log]\nlevel = warning\n");
    keys = seed.collections_keys();
  }
  seeded_players seed;
  std::unique_ptr<environment> env;
  std::map<std::string, std::string> keys;
};

// Queues players [from, to) and has a daemon of its own sync them: `run --drain` until it exits, or `run`
// until the queue is empty, then SIGTERM. Returns its peak RSS in KB.
long long peak_kb(memory_env& m, int from, int to, bool drain, const std::string& name) {
  std::vector<std::pair<std::string, std::string>> uploads;
  for (int i = from; i < to; ++i) {
    const std::string user = "mem-" + std::to_string(i);
    uploads.emplace_back(user, m.keys.at(user));
  }
  upload_keys(m.env->pg.url(), uploads);
  const std::vector<std::string> args = drain ? std::vector<std::string>{"run", "--drain"} : std::vector<std::string>{"run"};
  auto daemon = start_daemon(m.env->config, m.env->work.path() / (name + ".log"), args);
  const auto queued = [&m] {
    return query_count(m.env->pg.url(),
                       "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state IN ('pending', 'running')");
  };
  long long peak = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10min;
  for (int polls = 0; daemon->running() && std::chrono::steady_clock::now() < deadline; ++polls) {
    peak = std::max(peak, peak_rss_kb(daemon->pid()));
    if (!drain && polls % 10 == 0 && queued() == 0) break;
    std::this_thread::sleep_for(20ms);
  }
  peak = std::max(peak, peak_rss_kb(daemon->pid()));
  if (!drain) daemon->signal(SIGTERM);
  const auto status = daemon->wait(60s);
  BOOST_TEST_REQUIRE(status.has_value(), name << ": the daemon did not finish");
  BOOST_TEST_REQUIRE(*status == 0, name << ": " << daemon->log());
  const auto done = query_count(m.env->pg.url(),
                                "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state = 'done' AND "
                                "user_id IN (SELECT user_id FROM entitlement_sync.entitlements GROUP BY user_id "
                                "HAVING count(*) = " + std::to_string(items_each) + ")");
  BOOST_TEST_REQUIRE(done == to - from, name << ": every queued player synced with all its items");
  exec_sql(m.env->pg.url(), "DELETE FROM entitlement_sync.key_uploads");
  return peak;
}

// Flat: four times the backlog may cost a little more (a longer run meets more malloc fragmentation, more
// pooled connections get used), never something proportional to it.
void check_flat(long long small, long long large, const std::string& mode) {
  BOOST_TEST_MESSAGE(mode << ": peak RSS " << small / 1024 << " MB for " << small_backlog << " queued, "
                          << large / 1024 << " MB for " << large_backlog << " (concurrency " << concurrency << ")");
  BOOST_TEST(small > 0);
  BOOST_TEST(large <= small + small / 8 + 2048, mode << ": peak RSS " << small << " KB for " << small_backlog
                                                    << " queued, " << large << " KB for " << large_backlog);
}

}  // namespace

BOOST_AUTO_TEST_CASE(peak_rss_does_not_grow_with_the_backlog_in_drain_and_run_mode) {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer holds freed memory in a quarantine (up to 256 MB), so under it a longer run would
  // hold more whatever the daemon does: its daemons run with the quarantine off, and what is compared is
  // again the memory the daemon keeps.
  const char* given = std::getenv("ASAN_OPTIONS");
  const std::string options = std::string(given ? given : "") + (given && *given ? ":" : "") +
                              "quarantine_size_mb=0:thread_local_quarantine_size_kb=0";
  ::setenv("ASAN_OPTIONS", options.c_str(), 1);
#endif
  memory_env m;
  const long long drain_small = peak_kb(m, 0, small_backlog, true, "drain-small");
  const long long drain_large = peak_kb(m, small_backlog, small_backlog + large_backlog, true, "drain-large");
  check_flat(drain_small, drain_large, "run --drain");
  // The same players again (incremental syncs from their watermarks), now with a daemon in `run`.
  const long long run_small = peak_kb(m, 0, small_backlog, false, "run-small");
  const long long run_large = peak_kb(m, small_backlog, small_backlog + large_backlog, false, "run-large");
  check_flat(run_small, run_large, "run");
}
