// `run --drain` ends when the queue is done, also when periodic chores run beside the syncs (the gauges of
// a metrics endpoint, the systemd watchdog pings): nothing periodic keeps the daemon alive.
#define BOOST_TEST_MODULE drain_chores
#include <boost/test/unit_test.hpp>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(a_drain_with_a_metrics_endpoint_and_a_watchdog_exits) {
  environment env({}, "[metrics]\nlisten = 127.0.0.1:0\n");
  env.upload("drain-chores-1", env.emu.mint_key("drain-chores-1"));
  auto r = run_process({daemon_paths::daemon_bin(), "--config", env.config.string(), "run", "--drain"}, 60s,
                       {{"WATCHDOG_USEC", "2000000"}});
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("metrics: listening") != std::string::npos, r.output);
  BOOST_TEST(query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state = 'done'") == 1);
}
