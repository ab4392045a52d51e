// Faults, with real processes: a daemon killed with SIGKILL mid-run, PostgreSQL restarted under a running
// daemon, every kind of Store failure the emulator can inject, and two daemons sharing one queue. Whatever
// happens, every player ends synced exactly, no watermark runs ahead of its data, no event is lost or done
// twice, the daemon never crashes, and no log line holds a token, a key or the client secret.
#define BOOST_TEST_MODULE faults
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;

namespace {

using steady = std::chrono::steady_clock;

constexpr const char* query_path = "/v6.0/collections/query";

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// user_id -> the number of Store items the player owns.
using player_items = std::map<std::string, int>;

// n players "<prefix>-<i>" with items_of(i) items each (item ids "<user>-<k>"), added to the seed.
player_items add_players(seeded_players& seed, const std::string& prefix, int n,
                         const std::function<int(int)>& items_of) {
  player_items out;
  for (int i = 0; i < n; ++i) {
    const std::string user = prefix + "-" + std::to_string(i);
    out[user] = items_of(i);
    seed.add(user, emulator_instance::make_items(user, out[user]));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> uploads_for(const player_items& players,
                                                              const std::map<std::string, std::string>& keys) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [user, n] : players) {
    const auto it = keys.find(user);
    BOOST_TEST_REQUIRE((it != keys.end()), "no key minted for " << user);
    out.emplace_back(user, it->second);
  }
  return out;
}

std::string like(const std::string& prefix) { return "'" + prefix + "-%'"; }

// Events of these players in each state.
std::map<std::string, long long> event_states(const std::string& db_url, const std::string& prefix) {
  pqxx::connection c(db_url);
  pqxx::nontransaction tx(c);
  std::map<std::string, long long> out{{"pending", 0}, {"running", 0}, {"done", 0}, {"failed", 0}};
  for (const auto& row : tx.exec("SELECT state, count(*) FROM entitlement_sync.key_uploads WHERE user_id LIKE " +
                                 like(prefix) + " GROUP BY state"))
    out[row[0].as<std::string>()] = row[1].as<long long>();
  return out;
}

std::string describe(const std::map<std::string, long long>& states) {
  std::ostringstream s;
  for (const auto& [state, n] : states) s << state << "=" << n << " ";
  return s.str();
}

// Waits until no event of these players is pending or running; false on timeout.
bool wait_all_finished(const std::string& db_url, const std::string& prefix, std::chrono::milliseconds timeout) {
  return wait_for(
      [&] {
        auto s = event_states(db_url, prefix);
        return s["pending"] == 0 && s["running"] == 0;
      },
      timeout, 200ms);
}

// Every player of `players` synced, with exactly its items and no error; every one of their events done
// (`events` in all), none failed or open; no watermark ahead of the player's data, and NULL only for a
// player who owns nothing.
void check_synced_exactly(const std::string& db_url, const std::string& prefix, const player_items& players,
                          long long events) {
  pqxx::connection c(db_url);
  pqxx::nontransaction tx(c);
  auto rows = tx.exec(
      "SELECT u.user_id, u.last_synced_at IS NOT NULL, u.last_error, "
      "  (SELECT count(*) FROM entitlement_sync.entitlements e WHERE e.user_id = u.user_id), "
      "  u.watermark IS NULL, "
      "  coalesce(u.watermark <= (SELECT max(modified_date) FROM entitlement_sync.entitlements e "
      "                           WHERE e.user_id = u.user_id), false) "
      "FROM entitlement_sync.users u WHERE u.user_id LIKE " + like(prefix));
  BOOST_TEST(rows.size() == players.size(), "players known to the database");
  long long expected_items = 0;
  for (const auto& [user, n] : players) expected_items += n;
  int unsynced = 0, wrong_count = 0, with_error = 0, watermark_ahead = 0, watermark_null = 0;
  std::string first_problem;
  auto note = [&first_problem](const std::string& what) {
    if (first_problem.empty()) first_problem = what;
  };
  for (const auto& row : rows) {
    const auto user = row[0].as<std::string>();
    const auto it = players.find(user);
    if (it == players.end()) {
      note("unexpected player " + user);
      continue;
    }
    const int want = it->second;
    if (!row[1].as<bool>()) ++unsynced, note(user + " was never synced");
    if (!row[2].is_null()) ++with_error, note(user + " has last_error " + row[2].as<std::string>());
    if (row[3].as<long long>() != want)
      ++wrong_count, note(user + " has " + row[3].as<std::string>() + " rows, owns " + std::to_string(want));
    const bool null_watermark = row[4].as<bool>();
    if (null_watermark && want > 0) ++watermark_null, note(user + " owns items but has no watermark");
    if (!null_watermark && !row[5].as<bool>()) ++watermark_ahead, note(user + "'s watermark is ahead of its rows");
  }
  BOOST_TEST(unsynced == 0, first_problem);
  BOOST_TEST(with_error == 0, first_problem);
  BOOST_TEST(wrong_count == 0, first_problem);
  BOOST_TEST(watermark_null == 0, first_problem);
  BOOST_TEST(watermark_ahead == 0, first_problem);
  // The primary key rules out duplicate rows; the exact total also rules out rows from nowhere.
  BOOST_TEST(query_count(db_url, "SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id LIKE " +
                                     like(prefix)) == expected_items);
  auto states = event_states(db_url, prefix);
  BOOST_TEST(states["done"] == events, describe(states));
  BOOST_TEST(states["pending"] + states["running"] + states["failed"] == 0, describe(states));
}

// curl POSTing a file to the emulator's Store and Entra endpoints (not the control API); it prints the
// HTTP status, or the body with status_only = false.
std::vector<std::string> curl(const emulator_instance& emu, const std::string& path, const fs::path& body_file,
                              const std::vector<std::string>& headers, bool status_only = true) {
  std::vector<std::string> argv{"curl", "-sS", "--max-time", "30", "--cacert", emu.ca_file().string(), "-X", "POST",
                                "--data-binary", "@" + body_file.string()};
  if (status_only) argv.insert(argv.end(), {"-o", "/dev/null", "-w", "%{http_code}\n"});
  for (const auto& h : headers) {
    argv.push_back("-H");
    argv.push_back(h);
  }
  argv.push_back(emu.base_url() + path);
  return argv;
}

}  // namespace

// ---- 1. SIGKILL mid-run ----

BOOST_AUTO_TEST_CASE(a_daemon_killed_mid_run_loses_nothing_and_its_events_wait_for_their_lease) {
  // 500 players with 0 to 4 items; the Store answers in 250 ms, so the run takes a few seconds.
  seeded_players seed;
  const auto players = add_players(seed, "kill", 500, [](int i) { return i % 25 == 7 ? 0 : 1 + i % 4; });
  environment env(concat(seed.emulator_args(), {"--latency-ms", "250"}),
                  "[sync]\nlease = 5s\nconcurrency = 32\npoll_interval = 2s\nretry_base = 1s\nretry_cap = 2s\n");
  const auto keys = seed.collections_keys();
  const auto url = env.pg.url();
  const long long total = static_cast<long long>(players.size());

  auto first = start_daemon(env.config, env.work.path() / "first.log");
  BOOST_TEST_REQUIRE(first->wait_for_log("info started"), first->log());
  upload_keys(url, uploads_for(players, keys));
  // Kill when about half are done and syncs are in flight (between two claims there may be none).
  BOOST_TEST_REQUIRE(wait_for(
                         [&] {
                           auto states = event_states(url, "kill");
                           return (states["done"] >= total / 2 && states["running"] > 0) || !first->running();
                         },
                         90s, 20ms),
                     "half the players were not synced in time: " << describe(event_states(url, "kill")));
  BOOST_TEST_REQUIRE(first->running(), "the first daemon stopped by itself: " << first->log());
  first->signal(SIGKILL);
  const auto killed = first->wait(10s);
  BOOST_TEST_REQUIRE(killed.has_value());
  BOOST_TEST_REQUIRE(*killed == -SIGKILL);
  std::this_thread::sleep_for(300ms);  // a statement the daemon had already sent is finished by now

  // The kill cut syncs off mid-flight: their events are still running under the dead daemon's lease.
  const auto at_kill = event_states(url, "kill");
  BOOST_TEST_MESSAGE("at the kill: " << describe(at_kill));
  BOOST_TEST(at_kill.at("done") < total, "the kill came after the run");
  BOOST_TEST_REQUIRE(at_kill.at("running") > 0, "no sync was in flight at the kill: " << describe(at_kill));
  exec_sql(url, "CREATE TABLE public.killed_events AS SELECT event_id, claimed_by, lease_until "
                "FROM entitlement_sync.key_uploads WHERE state = 'running'");

  const auto restarted = steady::now();
  auto second = start_daemon(env.config, env.work.path() / "second.log");
  BOOST_TEST_REQUIRE(wait_all_finished(url, "kill", 90s),
                     "events still open: " << describe(event_states(url, "kill")) << "\n" << second->log());
  BOOST_TEST_MESSAGE("restart to all done: " << seconds_since(restarted) << " s");

  check_synced_exactly(url, "kill", players, total);
  // The dead daemon's events were taken up by the new one, and not before their lease ran out.
  BOOST_TEST(query_count(url, "SELECT count(*) FROM public.killed_events k JOIN entitlement_sync.key_uploads q "
                              "USING (event_id) WHERE q.state = 'done' AND q.claimed_by IS DISTINCT FROM k.claimed_by "
                              "AND q.claimed_at >= k.lease_until") == at_kill.at("running"));
  stop_cleanly(*second, "the restarted daemon");
  check_no_credentials(first->log(), "the killed daemon");
  check_no_credentials(second->log(), "the restarted daemon");
}

// ---- 2. PostgreSQL restart mid-run ----

BOOST_AUTO_TEST_CASE(a_postgresql_restart_mid_run_is_survived_and_new_uploads_are_claimed_at_once) {
  // A one-hour poll: only the LISTEN connection coming back can wake the daemon for new uploads, and only
  // the lease brings back the events whose write failed while the database was down.
  seeded_players seed;
  const auto before = add_players(seed, "pgr", 300, [](int i) { return 1 + i % 3; });
  const auto after = add_players(seed, "pgl", 20, [](int i) { return 2 + i % 2; });
  environment env(concat(seed.emulator_args(), {"--latency-ms", "50"}),
                  "[sync]\nlease = 5s\npoll_interval = 1h\nconcurrency = 4\nretry_base = 1s\nretry_cap = 2s\n");
  const auto keys = seed.collections_keys();
  const auto url = env.pg.url();

  auto daemon = start_daemon(env.config, env.work.path() / "daemon.log");
  BOOST_TEST_REQUIRE(daemon->wait_for_log("info started"), daemon->log());
  upload_keys(url, uploads_for(before, keys));
  BOOST_TEST_REQUIRE(wait_for([&] { return event_states(url, "pgr")["done"] >= 60; }, 60s, 20ms),
                     describe(event_states(url, "pgr")) << "\n"
                                                        << daemon->log());
  const auto done_before = event_states(url, "pgr")["done"];
  BOOST_TEST_REQUIRE(done_before < 300, "the run was over before the restart: make it slower");

  env.pg.stop();
  std::this_thread::sleep_for(3s);
  BOOST_TEST_REQUIRE(daemon->running(), "the daemon died while PostgreSQL was down: " << daemon->log());
  env.pg.start();
  BOOST_TEST_MESSAGE("PostgreSQL restarted with " << done_before << " of 300 done before the stop");

  const auto inserted = steady::now();
  upload_keys(url, uploads_for(after, keys));
  const bool late_done = wait_for([&] { return event_states(url, "pgl")["done"] == 20; }, 30s, 50ms);
  const double late_seconds = seconds_since(inserted);
  BOOST_TEST_MESSAGE("uploads after the restart synced in " << late_seconds << " s");
  BOOST_TEST_REQUIRE(late_done, "uploads after the restart not synced within 30 s: "
                                    << describe(event_states(url, "pgl")) << "\n" << daemon->log());
  // The backlog (~240 players at concurrency 4) and the listener's reconnect backoff take a few seconds; a
  // daemon that does not reconnect would take the hour of poll_interval.
  BOOST_TEST(late_seconds < 20.0);

  for (const char* prefix : {"pgr", "pgl"})
    BOOST_TEST_REQUIRE(wait_all_finished(url, prefix, 60s),
                       "events still open: " << describe(event_states(url, prefix)) << "\n" << daemon->log());
  check_synced_exactly(url, "pgr", before, 300);
  check_synced_exactly(url, "pgl", after, 20);
  stop_cleanly(*daemon, "the daemon");
  check_no_credentials(daemon->log(), "the daemon");
}

// ---- 3. Store faults ----

namespace {

// One environment for the Store fault cases; each case has its own players (prefix = the case's name).
struct fault_env {
  static constexpr int players_per_case = 16;
  static inline const std::vector<std::string> cases{"f500", "fhang", "f429", "fmalformed", "ftruncate",
                                                     "fdrop", "fmixed"};

  fault_env() {
    for (const auto& name : cases)
      players[name] = add_players(seed, name, players_per_case,
                                  // The 429 case pages (max_page_size = 2) through 5 or 6 items.
                                  name == "f429" ? std::function<int(int)>([](int i) { return 5 + i % 2; })
                                                 : std::function<int(int)>([](int i) { return 1 + i % 4; }));
    env = std::make_unique<environment>(concat(seed.emulator_args(), {"--latency-ms", "10"}));
    keys = seed.collections_keys();
    instance = this;
  }
  ~fault_env() { instance = nullptr; }

  seeded_players seed;
  std::map<std::string, player_items> players;
  std::unique_ptr<environment> env;
  std::map<std::string, std::string> keys;
  static inline fault_env* instance = nullptr;
};

fault_env& F() { return *fault_env::instance; }

constexpr const char* fault_ini =
    "[sync]\nretry_base = 1s\nretry_cap = 2s\nmax_attempts = 30\ndrain_grace = 30s\n"
    "[store]\nrequest_timeout = 2s\nconnect_timeout = 2s\n";

// Injects the faults, uploads the case's players, runs `run --drain`, and checks that every player ended
// synced exactly, the injected faults really happened, no request came before its Retry-After, no player
// was asked for twice at once, and the output holds no secret. Returns the daemon's output.
std::string run_fault_case(const std::string& name, const std::vector<std::string>& faults,
                           const std::string& fault_mode, const std::string& extra_ini = "") {
  auto& env = *F().env;
  env.emu.control("DELETE", "/_emulator/faults");
  env.emu.control("POST", "/_emulator/stats/reset");
  for (const auto& f : faults) env.emu.add_fault(f);
  temp_dir dir("esd-" + name);
  const auto config = write_daemon_config(dir.path(), env.pg.url(), env.emu, fault_ini + extra_ini);
  const auto& players = F().players.at(name);
  upload_keys(env.pg.url(), uploads_for(players, F().keys));

  const auto started = steady::now();
  auto r = run_daemon(config, {"run", "--drain"}, 120s);
  const double took = seconds_since(started);
  const auto stats = env.emu.stats();
  // (Computed first: a Boost.Test assertion inside BOOST_TEST_MESSAGE swallows the message.)
  const auto attempts = query_count(env.pg.url(), "SELECT max(attempts) FROM entitlement_sync.key_uploads "
                                                  "WHERE user_id LIKE " + like(name));
  BOOST_TEST_MESSAGE(name << ": drain took " << took << " s; faults injected "
                          << boost::json::serialize(stats.at("faultsInjected")) << ", most attempts of one event "
                          << attempts);
  env.emu.control("DELETE", "/_emulator/faults");

  BOOST_TEST(r.exit_code == 0, r.output);
  check_synced_exactly(env.pg.url(), name, players, static_cast<long long>(players.size()));
  const auto& injected = stats.at("faultsInjected").as_object();
  const auto* hits = injected.if_contains(fault_mode);
  BOOST_TEST((hits && hits->to_number<long long>() > 0), "no " << fault_mode << " fault was injected: "
                                                              << boost::json::serialize(stats));
  BOOST_TEST(stats.at("earlyAfterRetryAfter").to_number<long long>() == 0, boost::json::serialize(stats));
  BOOST_TEST(stats.at("userOverlaps").to_number<long long>() == 0, boost::json::serialize(stats));
  check_no_credentials(r.output, "the daemon (" + name + ")");
  return r.output;
}

long long max_attempts(const std::string& prefix) {
  return query_count(F().env->pg.url(),
                     "SELECT max(attempts) FROM entitlement_sync.key_uploads WHERE user_id LIKE " + like(prefix));
}

// A fault rule for the collections query: `count` hits, each matching request hit with `probability`.
std::string rule(const std::string& mode_fields, double probability, int count) {
  std::ostringstream s;
  s << R"({"path":")" << query_path << R"(",)" << mode_fields << R"(,"count":)" << count;
  if (probability < 1.0) s << R"(,"probability":)" << probability;
  s << "}";
  return s.str();
}

// The first two collections queries fail for sure, then a fraction of the rest, up to `count` more.
std::vector<std::string> first_two_then_some(const std::string& mode_fields, double probability, int count) {
  return {rule(mode_fields, 1.0, 2), rule(mode_fields, probability, count)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(store_faults, *utf::fixture<fault_env>())

BOOST_AUTO_TEST_CASE(http_500s_from_the_store_and_entra_are_retried) {
  const std::string token_path = std::string("/") + emulator_instance::tenant_id + "/oauth2/v2.0/token";
  auto faults = first_two_then_some(R"("mode":"status","status":500)", 0.4, 8);
  faults.push_back(R"({"path":")" + token_path + R"(","mode":"status","status":500,"count":1})");
  auto out = run_fault_case("f500", faults, "status");
  BOOST_TEST(max_attempts("f500") >= 2);
  BOOST_TEST(out.find("outcome=retry") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(requests_that_hang_past_request_timeout_are_retried) {
  auto out = run_fault_case("fhang", first_two_then_some(R"("mode":"hang")", 0.3, 2), "hang");
  BOOST_TEST(max_attempts("fhang") >= 2);
  BOOST_TEST(out.find("outcome=retry") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(bursts_of_429_are_never_answered_before_retry_after) {
  // Injected 429s with Retry-After 1 s (waited out inside the sync) and, for one player, 3 s (above
  // max_inline_wait: the event goes back to the queue), and the per-player budget of 2 requests a second,
  // which players paging through 3 pages run into.
  auto& emu = F().env->emu;
  emu.control("POST", "/_emulator/settings", R"({"userBudget":"2/1"})");
  auto out = run_fault_case(
      "f429",
      {R"({"path":")" + std::string(query_path) +
           R"(","mode":"status","status":429,"retryAfter":3,"userId":"f429-3","count":1})",
       rule(R"("mode":"status","status":429,"retryAfter":1)", 1.0, 2),
       rule(R"("mode":"status","status":429,"retryAfter":1)", 0.25, 6)},
      "status", "[sync]\nmax_inline_wait = 2s\n[store]\nmax_page_size = 2\n");
  const auto sent = emu.stat("retryAftersSent"), throttled = emu.stat("statusCounts", "429");
  emu.control("POST", "/_emulator/settings", R"({"userBudget":"200/300"})");
  BOOST_TEST(sent > 0);
  BOOST_TEST(throttled > 0);
  BOOST_TEST(out.find("throttled_waits=") != std::string::npos, out);  // waited out inside a sync
  const auto lines = sync_lines(out);  // the 3 s one: back to the queue
  BOOST_TEST(std::any_of(lines.begin(), lines.end(),
                         [](const sync_line& l) { return l.user == "f429-3" && l.outcome == "retry"; }),
             out);
}

BOOST_AUTO_TEST_CASE(malformed_json_answers_are_retried) {
  auto out = run_fault_case("fmalformed", first_two_then_some(R"("mode":"malformed")", 0.4, 8), "malformed");
  BOOST_TEST(max_attempts("fmalformed") >= 2);
  BOOST_TEST(out.find("outcome=retry") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(truncated_answers_are_retried) {
  auto out = run_fault_case("ftruncate", first_two_then_some(R"("mode":"truncate")", 0.4, 8), "truncate");
  BOOST_TEST(max_attempts("ftruncate") >= 2);
  BOOST_TEST(out.find("outcome=retry") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(dropped_connections_are_retried) {
  // A drop on a kept-alive connection may be retried at once on a fresh one by the HTTPS client, so the
  // sync may never see it: only the outcome is asserted.
  run_fault_case("fdrop", first_two_then_some(R"("mode":"drop")", 0.4, 8), "drop");
}

BOOST_AUTO_TEST_CASE(a_running_daemon_survives_every_fault_at_once_and_stops_cleanly) {
  auto& env = *F().env;
  env.emu.control("DELETE", "/_emulator/faults");
  env.emu.control("POST", "/_emulator/stats/reset");
  for (const auto& f : {rule(R"("mode":"status","status":503)", 0.1, 4), rule(R"("mode":"hang")", 0.1, 2),
                        rule(R"("mode":"status","status":429,"retryAfter":1)", 0.1, 4),
                        rule(R"("mode":"malformed")", 0.1, 4), rule(R"("mode":"truncate")", 0.1, 4),
                        rule(R"("mode":"drop")", 0.1, 4)})
    env.emu.add_fault(f);
  temp_dir dir("esd-fmixed");
  // Retries fall due within a second or two: poll that often (a running daemon's claims are otherwise woken
  // by uploads and finished syncs only).
  const auto config =
      write_daemon_config(dir.path(), env.pg.url(), env.emu, std::string(fault_ini) + "[sync]\npoll_interval = 1s\n");
  auto daemon = start_daemon(config, dir.path() / "daemon.log");
  BOOST_TEST_REQUIRE(daemon->wait_for_log("info started"), daemon->log());
  const auto& players = F().players.at("fmixed");
  upload_keys(env.pg.url(), uploads_for(players, F().keys));
  BOOST_TEST_REQUIRE(wait_all_finished(env.pg.url(), "fmixed", 60s),
                     describe(event_states(env.pg.url(), "fmixed")) << "\n" << daemon->log());
  const auto stats = env.emu.stats();
  env.emu.control("DELETE", "/_emulator/faults");
  check_synced_exactly(env.pg.url(), "fmixed", players, static_cast<long long>(players.size()));
  long long injected = 0;
  for (const auto& [mode, n] : stats.at("faultsInjected").as_object()) injected += n.to_number<long long>();
  BOOST_TEST(injected > 0, boost::json::serialize(stats));
  BOOST_TEST(stats.at("earlyAfterRetryAfter").to_number<long long>() == 0, boost::json::serialize(stats));
  BOOST_TEST(stats.at("userOverlaps").to_number<long long>() == 0, boost::json::serialize(stats));
  stop_cleanly(*daemon, "the daemon");
  check_no_credentials(daemon->log(), "the daemon");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- 4. Two daemons, one queue ----

BOOST_AUTO_TEST_CASE(two_daemons_share_1000_players_and_never_sync_one_player_twice_at_once) {
  // 2 or 3 items a player, one item a page: every sync is 2 or 3 sequential Store requests of >= 15 ms,
  // so two syncs of one player at the same time would overlap at the Store. 100 players upload twice,
  // in the same transaction: each of them is one sync of two events.
  seeded_players seed;
  const auto players = add_players(seed, "duo", 1000, [](int i) { return 2 + i % 2; });
  environment env(concat(seed.emulator_args(), {"--latency-ms", "15"}),
                  "[sync]\nconcurrency = 16\n[store]\nmax_page_size = 1\n");
  const auto keys = seed.collections_keys();
  const auto url = env.pg.url();
  std::map<std::string, long long> generated;
  for (const auto& [user, n] : env.emu.item_counts())
    if (user.starts_with("duo-")) generated[user] = n;
  BOOST_TEST_REQUIRE(generated.size() == players.size());
  for (const auto& [user, n] : players) BOOST_TEST_REQUIRE(generated[user] == n);

  auto a = start_daemon(env.config, env.work.path() / "a.log");
  auto b = start_daemon(env.config, env.work.path() / "b.log");
  BOOST_TEST_REQUIRE(a->wait_for_log("info started"), a->log());
  BOOST_TEST_REQUIRE(b->wait_for_log("info started"), b->log());
  auto uploads = uploads_for(players, keys);
  for (int i = 0; i < 100; ++i) uploads.push_back(uploads[static_cast<std::size_t>(i) * 10]);
  const auto started = steady::now();
  upload_keys(url, uploads);
  BOOST_TEST_REQUIRE(wait_all_finished(url, "duo", 120s), describe(event_states(url, "duo")));
  BOOST_TEST_MESSAGE("1,000 players, 1,100 events, two daemons: " << seconds_since(started) << " s");

  check_synced_exactly(url, "duo", players, 1100);
  BOOST_TEST(env.emu.stat("userOverlaps") == 0);
  stop_cleanly(*a, "daemon a");
  stop_cleanly(*b, "daemon b");

  // Both did a share; each player was one sync, done once, by one daemon.
  const auto lines_a = sync_lines(a->log()), lines_b = sync_lines(b->log());
  std::map<std::string, int> syncs_of;
  std::set<long long> first_a, first_b;
  long long ok_a = 0, ok_b = 0, events = 0;
  for (const auto* lines : {&lines_a, &lines_b}) {
    for (const auto& s : *lines) {
      ++syncs_of[s.user];
      if (s.outcome != "ok") continue;
      (lines == &lines_a ? ok_a : ok_b) += 1;
      (lines == &lines_a ? first_a : first_b).insert(s.first_event);
      events += s.events;
    }
  }
  BOOST_TEST_MESSAGE("daemon a synced " << ok_a << " players, daemon b " << ok_b);
  BOOST_TEST(ok_a > 0);
  BOOST_TEST(ok_b > 0);
  BOOST_TEST(ok_a + ok_b == 1000, "one job a player");
  BOOST_TEST(events == 1100, "the jobs' events= add up to every event");
  BOOST_TEST(syncs_of.size() == 1000u);
  int synced_twice = 0;
  for (const auto& [user, n] : syncs_of) synced_twice += n != 1;
  BOOST_TEST(synced_twice == 0);
  std::vector<long long> in_both;
  std::set_intersection(first_a.begin(), first_a.end(), first_b.begin(), first_b.end(), std::back_inserter(in_both));
  BOOST_TEST(in_both.empty(), in_both.size() << " first_event values appear in both logs");
  check_no_credentials(a->log(), "daemon a");
  check_no_credentials(b->log(), "daemon b");
}

// ---- The emulator's own instruments must be able to see what the tests above say never happens ----

BOOST_AUTO_TEST_CASE(the_emulator_counts_overlapping_and_premature_requests) {
  // 500 ms of latency holds every answer back, so two requests started together are in flight together.
  emulator_instance emu({"--latency-ms", "500"});
  emu.put_items("probe-a", emulator_instance::make_items("pa", 2));
  emu.put_items("probe-b", emulator_instance::make_items("pb", 2));
  temp_dir dir("esd-probe");
  auto write = [&dir](const std::string& name, const std::string& text) {
    const auto p = dir.path() / name;
    std::ofstream(p) << text;
    return p;
  };
  const auto token_form = write("token.form", std::string("grant_type=client_credentials&client_id=") +
                                                  emulator_instance::client_id +
                                                  "&client_secret=" + emulator_instance::client_secret +
                                                  "&scope=https%3A%2F%2Fonestore.microsoft.com%2F.default");
  const auto token_answer =
      run_process(curl(emu, std::string("/") + emulator_instance::tenant_id + "/oauth2/v2.0/token", token_form,
                       {"Content-Type: application/x-www-form-urlencoded"}, false),
                  40s);
  BOOST_TEST_REQUIRE(token_answer.exit_code == 0, token_answer.output);
  const auto token = std::string(boost::json::parse(token_answer.output).at("access_token").as_string());
  const std::vector<std::string> headers{"Content-Type: application/json", "Authorization: Bearer " + token};
  auto query_of = [&](const std::string& user) {
    return write(user + ".json", R"({"beneficiaries":[{"identityType":"b2b","identityValue":")" +
                                     emu.mint_key(user) + R"(","localTicketReference":"probe"}],"maxPageSize":100})");
  };
  const auto query_a = query_of("probe-a"), query_b = query_of("probe-b");
  auto together = [&](const fs::path& first, const fs::path& second) {
    background_process one(curl(emu, query_path, first, headers), dir.path() / "one.out");
    background_process two(curl(emu, query_path, second, headers), dir.path() / "two.out");
    BOOST_TEST_REQUIRE((one.wait(40s) == std::optional<int>(0)), one.log());
    BOOST_TEST_REQUIRE((two.wait(40s) == std::optional<int>(0)), two.log());
    return one.log() + two.log();
  };

  BOOST_TEST(emu.stat("userOverlaps") == 0);
  BOOST_TEST(together(query_a, query_a) == "200\n200\n");  // one player, twice at once
  BOOST_TEST(emu.stat("userOverlaps") == 1);
  BOOST_TEST(together(query_a, query_b) == "200\n200\n");  // two players at once
  for (int i = 0; i < 2; ++i) {                            // one player, one request after the other
    const auto r = run_process(curl(emu, query_path, query_a, headers), 40s);
    BOOST_TEST(r.output == "200\n");
  }
  BOOST_TEST(emu.stat("userOverlaps") == 1);

  // A 429 saying "Retry-After: 2": asking again at once is premature, asking after 2 s is not.
  emu.add_fault(std::string(R"({"path":")") + query_path +
                R"(","mode":"status","status":429,"retryAfter":2,"userId":"probe-b"})");
  BOOST_TEST(run_process(curl(emu, query_path, query_b, headers), 40s).output == "429\n");
  BOOST_TEST(emu.stat("retryAftersSent") == 1);
  BOOST_TEST(emu.stat("earlyAfterRetryAfter") == 0);
  BOOST_TEST(run_process(curl(emu, query_path, query_b, headers), 40s).output == "200\n");  // ~0.5 s later
  BOOST_TEST(emu.stat("earlyAfterRetryAfter") == 1);
  BOOST_TEST(run_process(curl(emu, query_path, query_a, headers), 40s).output == "200\n");  // another player
  std::this_thread::sleep_for(2s);
  BOOST_TEST(run_process(curl(emu, query_path, query_b, headers), 40s).output == "200\n");
  BOOST_TEST(emu.stat("earlyAfterRetryAfter") == 1);
}
