// Politeness under throttling and transient Store failures: 429 with Retry-After is honoured, 5xx and
// malformed answers are retried, and other players are not held up.
#define BOOST_TEST_MODULE throttling
#include <boost/test/unit_test.hpp>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(a_429_is_retried_after_retry_after_and_the_player_is_synced) {
  // Each player may make 1 Store operation per 2 seconds: a 3-page collection runs into the 429.
  environment env({"--user-budget", "1/2"}, "[sync]\nretry_base = 1s\nretry_cap = 5s\ndrain_grace = 30s\n"
                                            "[store]\nmax_page_size = 10\n");
  env.emu.put_items("throttled", emulator_instance::make_items("t", 25));
  env.upload("throttled", env.emu.mint_key("throttled"));
  auto r = env.drain(180s);
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(env.count("SELECT count(*) FROM entitlement_sync.entitlements") == 25);
  BOOST_TEST(env.emu.stat("statusCounts", "429") >= 2);
  BOOST_TEST(r.output.find("throttled_waits=") != std::string::npos, r.output);
  // Two 429s at least, each with its Retry-After (1-2 s), and no request of the player came before it ran
  // out: the emulator notes every request that comes sooner.
  BOOST_TEST(env.emu.stat("retryAftersSent") >= 2);
  BOOST_TEST(env.emu.stat("earlyAfterRetryAfter") == 0);
  BOOST_TEST(env.count("SELECT count(*) FROM entitlement_sync.user_status WHERE last_error IS NULL "
                       "AND last_synced_at IS NOT NULL") == 1);
}

BOOST_AUTO_TEST_CASE(a_long_retry_after_ends_the_attempt_and_reschedules_the_event) {
  // Retry-After of 3 s is above max_inline_wait = 1s: the event goes back to the queue until then.
  environment env({}, "[sync]\nretry_base = 1s\nretry_cap = 2s\nmax_inline_wait = 1s\ndrain_grace = 30s\n");
  env.emu.put_items("later", emulator_instance::make_items("l", 3));
  env.emu.add_fault(
      R"({"path":"/v6.0/collections/query","count":1,"mode":"status","status":429,"retryAfter":3})");
  env.upload("later", env.emu.mint_key("later"));
  const auto started = std::chrono::steady_clock::now();
  auto r = env.drain(120s);
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST((std::chrono::steady_clock::now() - started >= 3s));
  BOOST_TEST(env.emu.stat("retryAftersSent") == 1);
  BOOST_TEST(env.emu.stat("earlyAfterRetryAfter") == 0);  // the next claim waited for the Retry-After
  BOOST_TEST(env.count("SELECT count(*) FROM entitlement_sync.entitlements") == 3);
  BOOST_TEST(r.output.find("outcome=retry") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("HTTP 429") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(server_errors_and_malformed_answers_are_retried) {
  environment env({}, "[sync]\nretry_base = 1s\nretry_cap = 2s\ndrain_grace = 30s\n");
  env.emu.put_items("flaky", emulator_instance::make_items("f", 5));
  env.emu.add_fault(R"({"path":"/v6.0/collections/query","count":1,"mode":"status","status":503})");
  env.emu.add_fault(R"({"path":"/v6.0/collections/query","count":1,"mode":"malformed"})");
  env.upload("flaky", env.emu.mint_key("flaky"));
  auto r = env.drain(120s);
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(env.count("SELECT count(*) FROM entitlement_sync.entitlements") == 5);
  BOOST_TEST(env.count("SELECT max(attempts) FROM entitlement_sync.key_uploads") == 3);
  BOOST_TEST(r.output.find("outcome=retry") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(retries_give_up_after_max_attempts_with_the_reason_kept) {
  environment env({}, "[sync]\nretry_base = 1s\nretry_cap = 1s\nmax_attempts = 2\ndrain_grace = 20s\n");
  env.emu.add_fault(R"({"path":"/v6.0/collections/query","count":10,"mode":"status","status":500})");
  env.upload("doomed", env.emu.mint_key("doomed"));
  auto r = env.drain(120s);
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(env.count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE state = 'failed' "
                       "AND attempts = 2") == 1);
  auto err = query_value(env.pg.url(), "SELECT last_error FROM entitlement_sync.user_status WHERE user_id = 'doomed'");
  BOOST_TEST_REQUIRE(err.has_value());
  BOOST_TEST(err->find("HTTP 500") != std::string::npos, *err);
  BOOST_TEST(err->find("gave up after 2 attempts") != std::string::npos, *err);
}

BOOST_AUTO_TEST_CASE(a_short_429_on_key_renewal_is_waited_out_like_any_store_call) {
  // A key 15 days old is renewed before use; the renewal's first answer is a 429 with Retry-After 1 s
  // (under max_inline_wait): it is asked again inside the sync, and the sync uses the renewed key.
  environment env({}, "[sync]\nretry_base = 1s\nretry_cap = 2s\nmax_inline_wait = 5s\ndrain_grace = 30s\n");
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  env.emu.put_items("renew-throttled", emulator_instance::make_items("rt", 2));
  env.emu.control("POST", "/_emulator/faults",
                  R"({"path":"/v6.0/b2b/keys/renew","count":1,"mode":"status","status":429,"retryAfter":1})");
  env.upload("renew-throttled", env.emu.mint_key("renew-throttled", "collections", now - 15 * 86400, now + 15 * 86400));
  auto r = env.drain(120s);
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(env.emu.stat("statusCounts", "429") == 1);
  BOOST_TEST(env.emu.stat("renewals") == 1);  // the one after the 429, in the same sync
  BOOST_TEST(query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.user_keys WHERE collections_key_renewed_at "
                                       "IS NOT NULL") == 1);
  BOOST_TEST(query_count(env.pg.url(), "SELECT max(attempts) FROM entitlement_sync.key_uploads") == 1);
  BOOST_TEST(query_count(env.pg.url(), "SELECT count(*) FROM entitlement_sync.entitlements") == 2);
}
