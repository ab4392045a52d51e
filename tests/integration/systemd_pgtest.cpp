// Running under systemd: the notify protocol in order, SIGHUP reload, and the unit file itself.
#define BOOST_TEST_MODULE systemd
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

namespace {

// A NOTIFY_SOCKET as systemd provides it: a unix datagram socket.
class notify_socket {
 public:
  explicit notify_socket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    BOOST_TEST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{0, 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~notify_socket() { ::close(fd_); }
  // Collects messages until one contains `what` (or the deadline passes).
  bool wait_for(const std::string& what, std::chrono::seconds timeout = 20s) {
    // recv itself waits (SO_RCVTIMEO), so no pause between looks.
    return esd::test::wait_for(
        [&] {
          char buf[4096];
          const auto n = ::recv(fd_, buf, sizeof buf, 0);
          if (n <= 0) return false;
          messages.emplace_back(buf, static_cast<std::size_t>(n));
          return messages.back().find(what) != std::string::npos;
        },
        timeout, 0ms);
  }
  std::vector<std::string> messages;

 private:
  fs::path path_;
  int fd_ = -1;
};

// Appends settings to the daemon's config file and has it reload.
void reload_with(const environment& env, background_process& daemon, const std::string& ini) {
  std::ofstream(env.config, std::ios::app) << ini;
  daemon.signal(SIGHUP);
}

}  // namespace

BOOST_AUTO_TEST_CASE(notify_protocol_in_order_and_sighup_changes_the_log_level) {
  environment env;
  notify_socket sock(env.work.path() / "notify.sock");
  background_process daemon({daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "daemon.log",
                            {{"NOTIFY_SOCKET", (env.work.path() / "notify.sock").string()},
                             {"WATCHDOG_USEC", "400000"}});
  BOOST_TEST_REQUIRE(sock.wait_for("READY=1"), daemon.log());
  BOOST_TEST(sock.wait_for("WATCHDOG=1", 5s));
  BOOST_TEST(sock.wait_for("WATCHDOG=1", 5s));  // keeps pinging from the event loop

  // Change the log level, reload.
  reload_with(env, daemon, "\n[log]\nlevel = debug\n");
  BOOST_TEST_REQUIRE(sock.wait_for("RELOADING=1"));
  BOOST_TEST_REQUIRE(sock.wait_for("READY=1"));
  daemon.signal(SIGTERM);
  BOOST_TEST_REQUIRE(sock.wait_for("STOPPING=1"));
  auto status = daemon.wait(20s);
  BOOST_TEST_REQUIRE(status.has_value());
  BOOST_TEST(*status == 0, daemon.log());
  BOOST_TEST(daemon.log().find("log level info -> debug") != std::string::npos, daemon.log());

  // READY, then RELOADING, READY, STOPPING, in that order.
  std::vector<std::string> order;
  for (const auto& m : sock.messages)
    for (const char* s : {"READY=1", "RELOADING=1", "STOPPING=1"})
      if (m.find(s) != std::string::npos) order.emplace_back(s);
  BOOST_TEST((order == std::vector<std::string>{"READY=1", "RELOADING=1", "READY=1", "STOPPING=1"}));
}

BOOST_AUTO_TEST_CASE(a_broken_config_on_reload_keeps_the_running_one) {
  environment env;
  background_process daemon({daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "daemon.log");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("info started"), daemon.log());
  reload_with(env, daemon, "\n[sync]\nconcurrency = 8\nno_such_key = 1\n");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("reload failed, keeping the running configuration"), daemon.log());
  BOOST_TEST(daemon.log().find("no_such_key") != std::string::npos);
  BOOST_TEST(daemon.running());
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(20s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(the_unit_verifies_and_scores_ok) {
  std::ifstream in(std::string(ESD_BINARY_DIR) + "/entitlement-syncd.service");
  BOOST_TEST_REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  // verify checks that ExecStart exists: point it at the binary under test.
  std::string unit = text.str();
  for (std::size_t at; (at = unit.find("/bin/entitlement-syncd ")) != std::string::npos;) {
    const auto start = unit.rfind('=', at) + 1;  // ExecStart=/usr/local/bin/entitlement-syncd ...
    unit.replace(start, at + std::string("/bin/entitlement-syncd").size() - start, daemon_paths::daemon_bin());
  }
  // Core dumps off, and no empty hardening line (one that resets a setting to its default and so does
  // nothing) except CapabilityBoundingSet=, which empties the set.
  BOOST_TEST(unit.find("\nLimitCORE=0\n") != std::string::npos);
  {
    std::istringstream lines(unit);
    for (std::string line; std::getline(lines, line);)
      if (!line.empty() && line.back() == '=' && line.front() != '#')
        BOOST_TEST(line == "CapabilityBoundingSet=", "an empty setting: " << line);
  }
  temp_dir dir("esd-unit");
  const auto path = dir.path() / "entitlement-syncd.service";
  std::ofstream(path) << unit;
  auto verify = run_process({"systemd-analyze", "verify", "--man=no", path.string()}, 60s);
  BOOST_TEST(verify.exit_code == 0, verify.output);
  BOOST_TEST(verify.output.find("entitlement-syncd.service") == std::string::npos, verify.output);  // no complaints
  auto security = run_process({"systemd-analyze", "security", "--offline=true", "--no-pager", path.string()}, 60s);
  const std::string marker = "Overall exposure level for entitlement-syncd.service: ";
  const auto at = security.output.find(marker);
  BOOST_TEST_REQUIRE(at != std::string::npos, security.output);
  std::istringstream verdict(security.output.substr(at + marker.size()));
  double score = 99;
  std::string word;
  verdict >> score >> word;
  BOOST_TEST(score <= 2.0, security.output);
  BOOST_TEST(word == "OK");
}

BOOST_AUTO_TEST_CASE(metrics_match_the_work_done_and_health_endpoints_answer) {
  environment env({}, "[metrics]\nlisten = 127.0.0.1:0\n");
  for (int i = 0; i < 3; ++i) {
    const std::string user = "metrics-" + std::to_string(i);
    env.emu.put_items(user, emulator_instance::make_items(user, 4));
    env.upload(user, env.emu.mint_key(user));
  }
  env.upload("metrics-bad", std::string("not-a-key"));
  background_process daemon({daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "daemon.log");
  wait_for(
      [&] {
        return env.count(
                   "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state IN "
                   "('pending','running')") == 0;
      },
      30s, 50ms);
  const auto log = daemon.log();
  const auto at = log.find("metrics: listening");
  BOOST_TEST_REQUIRE(at != std::string::npos, log);
  const auto port = std::stoi(log.substr(log.find("port=", at) + 5));
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  std::this_thread::sleep_for(5500ms);  // one refresh of the database gauges
  auto get = [](const std::string& url) {
    return run_process({"curl", "-s", "-w", "\n%{http_code}", url}, 20s).output;
  };
  const auto scrape = get(base + "/metrics");
  auto has = [&](const std::string& line) {
    BOOST_TEST(scrape.find(line + "\n") != std::string::npos, "missing '" << line << "' in\n" << scrape);
  };
  has("entitlement_syncd_events_total{outcome=\"done\"} 3");
  has("entitlement_syncd_events_total{outcome=\"failed\"} 1");
  has("entitlement_syncd_events_failed_total{reason=\"bad_key\"} 1");
  has("entitlement_syncd_items_written_total 12");
  has("entitlement_syncd_store_requests_total{endpoint=\"collections_query\",status=\"200\"} 3");
  has("entitlement_syncd_store_requests_total{endpoint=\"entra_token\",status=\"200\"} 1");
  has("entitlement_syncd_token_fetches_total{outcome=\"ok\"} 1");
  has("entitlement_syncd_sync_duration_seconds_count 4");
  has("entitlement_syncd_queue_waiting 0");
  has("entitlement_syncd_queue_failed 1");
  has("# TYPE entitlement_syncd_sync_duration_seconds histogram");
  check_no_credentials(scrape, "/metrics");
  BOOST_TEST(get(base + "/healthz").find("\n200") != std::string::npos);
  auto ready = get(base + "/readyz");
  BOOST_TEST(ready.find("\n200") != std::string::npos, ready);
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(20s).value_or(-1) == 0, daemon.log());
}

BOOST_AUTO_TEST_CASE(sighup_applies_a_new_concurrency_at_once) {
  // Every Store answer takes 400 ms, so syncs overlap unless concurrency keeps them apart.
  environment env({"--latency-ms", "400"});
  background_process daemon({daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "daemon.log");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("info started"), daemon.log());
  reload_with(env, daemon, "\n[sync]\nconcurrency = 1\n");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("concurrency 64 -> 1"), daemon.log());
  BOOST_TEST(daemon.log().find("needs a restart: [sync] concurrency") == std::string::npos);

  for (int i = 0; i < 4; ++i) env.upload("one-at-a-time-" + std::to_string(i), env.emu.mint_key("one-at-a-time-" + std::to_string(i)));
  long long most_running = 0;
  wait_for(
      [&] {
        most_running =
            std::max(most_running, env.count("SELECT count(DISTINCT user_id) FROM "
                                             "entitlement_sync.key_uploads WHERE state = 'running'"));
        return env.count(
                   "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state IN "
                   "('pending','running')") == 0;
      },
      60s, 20ms);
  BOOST_TEST(query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.user_status WHERE last_synced_at IS NOT NULL") == 4);
  BOOST_TEST(most_running == 1);
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(30s).value_or(-1) == 0, daemon.log());
}

BOOST_AUTO_TEST_CASE(sighup_rereads_the_key_ring) {
  temp_dir dir("esd-ring-reload");
  const auto ring = dir.path() / "ring";
  auto key_line = [](const std::string& id) {
    auto r = run_process({"openssl", "rand", "-base64", "32"}, 10s);
    return id + " " + r.output.substr(0, r.output.find('\n')) + "\n";
  };
  const auto k1 = key_line("k1");
  std::ofstream(ring) << k1;
  environment env({}, "[security]\nkey_encryption_key_file = " + ring.string() + "\n");
  background_process daemon({daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "daemon.log");
  auto synced = [&](const std::string& user) {
    const std::string done =
        "SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = " + sql_quote(user) +
        " AND state = 'done'";
    BOOST_TEST_REQUIRE(wait_for([&] { return env.count(done) > 0; }, 30s, 20ms),
                       user << ": " << daemon.log());
  };
  env.upload("ring-1", env.emu.mint_key("ring-1"));
  synced("ring-1");
  std::ofstream(ring) << key_line("k2") << k1;  // rotate: k2 seals from now on, k1 still opens
  daemon.signal(SIGHUP);
  BOOST_TEST_REQUIRE(daemon.wait_for_log("key ring re-read (sealing with key id k2)"), daemon.log());
  env.upload("ring-2", env.emu.mint_key("ring-2"));
  synced("ring-2");
  // ring-1's key, sealed with k1 before the reload, still opens: its resync goes to the Store and succeeds.
  const auto queries_before = env.emu.stat("queriesByUser", "ring-1");
  env.exec("SELECT entitlement_sync.request_resync('ring-1')");
  const std::string resync_finished =
      "SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'ring-1' "
      "AND kind = 'resync' AND state IN ('done', 'failed')";
  BOOST_TEST_REQUIRE(wait_for([&] { return env.count(resync_finished) == 1; }, 30s, 20ms), daemon.log());
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(30s).value_or(-1) == 0, daemon.log());
  BOOST_TEST(env.count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'ring-1' "
                       "AND kind = 'resync' AND state = 'done'") == 1,
             daemon.log());
  BOOST_TEST(env.emu.stat("queriesByUser", "ring-1") > queries_before);
  BOOST_TEST(env.count("SELECT count(*) FROM entitlement_sync.user_keys WHERE user_id = 'ring-1' "
                       "AND collections_key LIKE 'esd1:k1:%'") == 1);
  BOOST_TEST(env.count("SELECT count(*) FROM entitlement_sync.user_keys WHERE user_id = 'ring-2' "
                       "AND collections_key LIKE 'esd1:k2:%'") == 1);
  BOOST_TEST(env.count("SELECT count(*) FROM entitlement_sync.user_status WHERE last_error IS NOT NULL") ==
             0);
  check_no_credentials(daemon.log(), "the daemon");
}
