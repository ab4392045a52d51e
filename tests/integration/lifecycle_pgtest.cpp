// Stopping: SIGTERM finishes or hands back what is in flight, within shutdown_timeout, and exits 0.
#define BOOST_TEST_MODULE lifecycle
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(sigterm_hands_back_a_sync_stuck_on_the_store) {
  environment env({}, "[sync]\nshutdown_timeout = 1s\n");
  env.emu.put_items("stuck", emulator_instance::make_items("s", 3));
  env.emu.add_fault(R"({"path":"/v6.0/collections/query","count":1,"mode":"hang"})");
  background_process daemon({daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "daemon.log");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("info started"), daemon.log());
  env.upload("stuck", env.emu.mint_key("stuck"));
  wait_for(
      [&] {
        return env.count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE state = 'running'") > 0;
      },
      20s, 20ms);
  std::this_thread::sleep_for(200ms);  // the query is now hanging at the Store
  daemon.signal(SIGTERM);
  auto status = daemon.wait(20s);
  BOOST_TEST_REQUIRE(status.has_value(), "the daemon did not stop: " << daemon.log());
  BOOST_TEST(*status == 0, daemon.log());
  // Back in the queue, not counted as an attempt, and no longer ours.
  BOOST_TEST(query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state = 'pending' "
                                       "AND attempts = 0 AND claimed_by IS NULL") == 1);
  BOOST_TEST(daemon.log().find("handed back 1") != std::string::npos, daemon.log());

  // The next daemon syncs it.
  auto r = env.drain();
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.entitlements") == 3);
}

BOOST_AUTO_TEST_CASE(sigterm_while_idle_exits_cleanly_and_a_bad_database_is_fatal) {
  environment env;
  background_process daemon({daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "idle.log");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("info started"), daemon.log());
  daemon.signal(SIGTERM);
  auto status = daemon.wait(20s);
  BOOST_TEST_REQUIRE(status.has_value());
  BOOST_TEST(*status == 0, daemon.log());

  temp_dir dir("esd-baddb");
  auto cfg = write_daemon_config(dir.path(), "postgresql:///nope?host=/nonexistent&port=1", env.emu);
  auto r = run_daemon(cfg, {"run", "--drain"}, 60s);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("cannot use the database") != std::string::npos, r.output);
}

// The daemon's memory holds the client secret, tokens and keys. Run as an unprivileged user (as systemd's
// DynamicUser would), it is not dumpable: the kernel then gives the files under its /proc/<pid> to root, so
// neither a core dump nor another process of that user can read its memory; and its core size limit is 0.
BOOST_AUTO_TEST_CASE(the_running_daemon_allows_no_core_dump) {
  // The daemon would inherit a core size limit from here: make it one that allows cores.
  rlimit core{};
  BOOST_TEST_REQUIRE(::getrlimit(RLIMIT_CORE, &core) == 0);
  core.rlim_cur = core.rlim_max;
  BOOST_TEST_REQUIRE(::setrlimit(RLIMIT_CORE, &core) == 0);
  environment env;
  background_process daemon({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "daemon.log");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("info started"), daemon.log());
  const std::string proc = "/proc/" + std::to_string(daemon.pid());
  std::ifstream status_file(proc + "/status");
  std::stringstream status;
  status << status_file.rdbuf();
  BOOST_TEST_REQUIRE(status.str().find("\nUid:\t65534\t65534\t65534\t65534") != std::string::npos,
                     status.str());
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat((proc + "/status").c_str(), &st) == 0);
  BOOST_TEST(st.st_uid == 0u, "/proc/<pid>/status belongs to uid " << st.st_uid << ": the process is dumpable");
  std::ifstream limits_file(proc + "/limits");
  std::string line, core_limit;
  while (std::getline(limits_file, line))
    if (line.starts_with("Max core file size")) core_limit = line;
  std::istringstream fields(core_limit.substr(std::string("Max core file size").size()));
  std::string soft, hard;
  fields >> soft >> hard;
  BOOST_TEST(soft == "0", core_limit);
  BOOST_TEST(hard == "0", core_limit);
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(20s).value_or(-1) == 0, daemon.log());
}
