// The Entra token endpoint's answer is never repeated: an endpoint that echoes the form it was sent (a
// debugging proxy, a misrouted request) would otherwise put the client secret into the log, the players'
// last_error and /readyz.
#define BOOST_TEST_MODULE token_endpoint
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <thread>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(a_token_endpoint_that_echoes_the_form_never_gets_the_secret_repeated) {
  environment env({}, "[sync]\nretry_base = 1s\n[metrics]\nlisten = 127.0.0.1:0\n");
  const std::string token_path = "/" + std::string(emulator_instance::tenant_id) + "/oauth2/v2.0/token";
  env.emu.add_fault(R"({"path":")" + token_path + R"(","count":100000,"mode":"echo","status":400})");
  env.emu.put_items("echo-player", emulator_instance::make_items("echo", 2));
  env.upload("echo-player", env.emu.mint_key("echo-player"));
  background_process daemon({daemon_paths::daemon_bin(), "--config", env.config.string(), "run"},
                            env.work.path() / "daemon.log");
  BOOST_TEST_REQUIRE(daemon.wait_for_log("metrics: listening"), daemon.log());

  const std::string failed_sql =
      "SELECT count(*) FROM entitlement_sync.user_status WHERE user_id = 'echo-player' "
      "AND last_error IS NOT NULL";
  wait_for([&] { return env.count(failed_sql) > 0; }, 60s);
  BOOST_TEST_REQUIRE(env.count(failed_sql) == 1, daemon.log());
  BOOST_TEST_REQUIRE(env.emu.stat("faultsInjected", "echo") >= 1);

  const auto log = daemon.log();
  const auto at = log.find("port=", log.find("metrics: listening"));
  const std::string readyz =
      run_process({"curl", "-s", "-w", "\n%{http_code}",
                   "http://127.0.0.1:" + std::to_string(std::stoi(log.substr(at + 5))) + "/readyz"},
                  20s)
          .output;
  const std::string last_error =
      query_value(env.pg.url(),
                  "SELECT last_error FROM entitlement_sync.user_status WHERE user_id = 'echo-player'")
          .value_or("");
  const std::string event_errors =
      query_value(env.pg.url(),
                  "SELECT string_agg(coalesce(last_error, ''), ' | ') FROM entitlement_sync.key_uploads")
          .value_or("");
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(20s).value_or(-1) == 0, daemon.log());

  // What is said instead: the status, the content type and the length.
  BOOST_TEST(readyz.find("\n503") != std::string::npos, readyz);
  BOOST_TEST(readyz.find("HTTP 400, text/plain") != std::string::npos, readyz);
  BOOST_TEST(last_error.find("HTTP 400, text/plain") != std::string::npos, last_error);
  for (const auto& [where, text] : {std::pair<std::string, std::string>{"the log", daemon.log()},
                                    {"/readyz", readyz},
                                    {"user_status.last_error", last_error},
                                    {"key_uploads.last_error", event_errors}}) {
    check_no_credentials(text, where);
    BOOST_TEST(text.find("client_secret=") == std::string::npos, "the form in " << where << ": " << text);
    BOOST_TEST(text.find("grant_type=") == std::string::npos, "the answer's text in " << where << ": " << text);
  }
}
