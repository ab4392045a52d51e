// Stopping: SIGTERM finishes or hands back what is in flight, within shutdown_timeout, and exits 0.
#define BOOST_TEST_MODULE lifecycle
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <thread>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;


BOOST_AUTO_TEST_CASE(sigterm_hands_back_a_sync_stuck_on_the_store) {
  environment env({}, "[sync]\nshutdown_timeout = 1s\n");
  env.emu.put_items("stuck", emulator_instance::make_items("s", 3));
  env.emu.control("POST", "/_emulator/faults", R"({"path":"/v6.0/collections/query","count":1,"mode":"hang"})");
  background_process daemon({daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "daemon.log");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("info started"), daemon.log());
  env.upload("stuck", env.emu.mint_key("stuck"));
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state = 'running'") == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
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
