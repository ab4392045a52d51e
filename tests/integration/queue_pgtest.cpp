// The queue, with real processes: request_resync for many players, coalescing of a burst of uploads, a
// resync requested mid-sync, lease fencing between two daemons, pruning, the claim's index, throttled
// backfills with cancellation, the per-player Store budget and the global Store rate limit.
// One PostgreSQL and one emulator serve every case; each case starts from an empty queue and its own
// daemon(s), and sets the emulator's latency and per-player budget through the control API.
#define BOOST_TEST_MODULE queue
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <algorithm>
#include <ctime>
#include <functional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "harness/harness.hpp"

using namespace esd::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;

namespace {

using steady = std::chrono::steady_clock;

// Collects the NOTICEs (and warnings) PostgreSQL sends on one connection.
class notice_collector : public pqxx::errorhandler {
 public:
  explicit notice_collector(pqxx::connection_base& c) : pqxx::errorhandler(c) {}
  bool operator()(const char msg[]) noexcept override {
    try {
      messages.emplace_back(msg);
    } catch (...) {
    }
    return true;
  }
  std::string all() const {
    std::string out;
    for (const auto& m : messages) out += m;
    return out;
  }
  std::vector<std::string> messages;
};

// ---- The shared environment ----

constexpr int rate_players = 60;
constexpr int backfill_players = 30;

std::string numbered(const std::string& prefix, int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d", i);
  return prefix + buf;
}

struct queue_env {
  queue_env() {
    for (int i = 0; i < rate_players; ++i) {
      seed.add(numbered("rate-l-", i), emulator_instance::make_items(numbered("rate-l-", i), 1));
      seed.add(numbered("rate-u-", i), emulator_instance::make_items(numbered("rate-u-", i), 1));
    }
    for (int i = 0; i < backfill_players; ++i)
      seed.add(numbered("bf-", i), emulator_instance::make_items(numbered("bf-", i), 2));
    // Uploads made while a backfill runs; they sort before "bf-", so the backfill's cursor is past them.
    for (int i = 0; i < 3; ++i) seed.add(numbered("ba-up-", i), emulator_instance::make_items(numbered("ba-up-", i), 1));
    env = std::make_unique<environment>(seed.emulator_args());
    keys = seed.collections_keys();
    instance = this;
  }
  ~queue_env() { instance = nullptr; }

  seeded_players seed;
  std::unique_ptr<environment> env;
  std::map<std::string, std::string> keys;
  temp_dir configs{"esd-queue-configs"};
  int daemons_started = 0;
  static inline queue_env* instance = nullptr;
};

queue_env& Q() { return *queue_env::instance; }
const std::string& url() { return Q().env->pg.url(); }
emulator_instance& emu() { return Q().env->emu; }

// Every case starts from an empty queue, no known player, and an emulator with no fault, no latency, the
// default per-player budget and zeroed statistics.
void fresh_start() {
  exec_sql(url(),
           "DELETE FROM entitlement_sync.key_uploads; DELETE FROM entitlement_sync.backfills; "
           "DELETE FROM entitlement_sync.users");
  emu().control("DELETE", "/_emulator/faults");
  emu().control("POST", "/_emulator/settings", R"({"latencyMs":0,"userBudget":"200/300"})");
  emu().control("POST", "/_emulator/stats/reset");
}

void set_latency(int ms) {
  emu().control("POST", "/_emulator/settings", "{\"latencyMs\":" + std::to_string(ms) + "}");
}

// A daemon of its own config (the standard one plus extra_ini), started and past its "started" line.
std::unique_ptr<background_process> launch(const std::string& name, const std::string& extra_ini) {
  const auto dir = Q().configs.path() / (name + "-" + std::to_string(++Q().daemons_started));
  fs::create_directories(dir);
  const auto config = write_daemon_config(dir, url(), emu(), extra_ini);
  auto d = start_daemon(config, dir / "daemon.log");
  BOOST_TEST_REQUIRE(d->wait_for_log("info started"), name << ": " << d->log());
  return d;
}

std::string owner_pattern(const background_process& d) { return "'%:" + std::to_string(d.pid()) + ":%'"; }

long long events_of(const std::string& user, const std::string& state) {
  return Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = " +
                        sql_quote(user) + " AND state = " + sql_quote(state));
}

long long open_events_like(const std::string& pattern) {
  return Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id LIKE " +
                        sql_quote(pattern) + " AND state IN ('pending', 'running')");
}

// Waits until the player has `done` events done and none open.
bool wait_done(const std::string& user, long long done, std::chrono::milliseconds timeout) {
  return wait_for(
      [&] {
        return Q().env->count("SELECT (count(*) FILTER (WHERE state = 'done') = " + std::to_string(done) +
                              " AND count(*) FILTER (WHERE state IN ('pending', 'running')) = 0)::int "
                              "FROM entitlement_sync.key_uploads WHERE user_id = " +
                              sql_quote(user)) == 1;
      },
      timeout, 50ms);
}

std::string queue_of(const std::string& user) {
  pqxx::connection c(url());
  pqxx::nontransaction tx(c);
  std::ostringstream s;
  for (const auto& row : tx.exec("SELECT event_id, kind, state, attempts, claimed_by, last_error "
                                 "FROM entitlement_sync.key_uploads WHERE user_id = " +
                                 sql_quote(user) + " ORDER BY event_id"))
    s << "[" << row[0].c_str() << " " << row[1].c_str() << " " << row[2].c_str() << " attempts=" << row[3].c_str()
      << " by=" << row[4].c_str() << " " << row[5].c_str() << "] ";
  return s.str();
}

long long stat_of_user(const std::string& map, const std::string& user) { return emu().stat(map, user); }

std::string curl_text(const std::string& http_url) {
  auto r = run_process({"curl", "-sS", "--max-time", "10", http_url}, 20s);
  BOOST_TEST_REQUIRE(r.exit_code == 0, "curl " << http_url << ": " << r.output);
  return r.output;
}

// The value of an unlabelled Prometheus sample, -1 when absent.
double metric_value(const std::string& exposition, const std::string& name) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(queue, *utf::fixture<queue_env>())

// ---- 1. request_resync for many players ----

BOOST_AUTO_TEST_CASE(request_resync_of_many_players_queues_the_known_ones_and_names_the_unknown) {
  fresh_start();
  // The trigger registers a player at their first upload.
  exec_sql(url(), "INSERT INTO entitlement_sync.key_uploads (user_id) VALUES ('rs-a'), ('rs-b'), ('rs-c')");
  const auto resyncs = [](const std::string& user, bool full) {
    return Q().env->count(
        "SELECT count(*) FROM entitlement_sync.key_uploads WHERE kind = 'resync' AND user_id = " +
        sql_quote(user) + " AND full_sync = " + (full ? "true" : "false") + " AND state = 'pending'");
  };

  pqxx::connection c(url());
  notice_collector notices(c);
  auto call = [&c](const std::string& sql) {
    pqxx::work tx(c);
    auto v = tx.exec1(sql)[0];
    const long long n = v.is_null() ? -1 : v.as<long long>();
    tx.commit();
    return n;
  };

  // Two known players (one named twice) and one unknown: two events, and a NOTICE naming the unknown one.
  BOOST_TEST(call("SELECT entitlement_sync.request_resync(ARRAY['rs-a', 'rs-b', 'rs-a', 'nope'])") == 2);
  BOOST_TEST(resyncs("rs-a", false) == 1);
  BOOST_TEST(resyncs("rs-b", false) == 1);
  BOOST_TEST(resyncs("rs-c", false) == 0);
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'nope'") == 0);
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.users WHERE user_id = 'nope'") == 0,
             "an unknown player must not become known by a resync request");
  BOOST_TEST_REQUIRE(notices.messages.size() == 1u, notices.all());
  BOOST_TEST(notices.messages[0].find("NOTICE") != std::string::npos, notices.all());
  BOOST_TEST(notices.messages[0].find("not queued: 1 unknown user(s): nope") != std::string::npos, notices.all());

  // Full, all known: no NOTICE.
  BOOST_TEST(call("SELECT entitlement_sync.request_resync(ARRAY['rs-c'], true)") == 1);
  BOOST_TEST(resyncs("rs-c", true) == 1);
  BOOST_TEST(notices.messages.size() == 1u, notices.all());

  // Nothing known: 0 queued, every unknown id named (sorted), NULL included.
  BOOST_TEST(call("SELECT entitlement_sync.request_resync(ARRAY['ghost-2', 'ghost-1', NULL])") == 0);
  BOOST_TEST_REQUIRE(notices.messages.size() == 2u, notices.all());
  BOOST_TEST(notices.messages[1].find("not queued: 3 unknown user(s): ghost-1, ghost-2, NULL") != std::string::npos,
             notices.all());
  BOOST_TEST(call("SELECT entitlement_sync.request_resync(ARRAY[]::text[])") == 0);

  // The single-player form is unchanged: it returns the queued event's id and raises for an unknown player.
  const long long id = call("SELECT entitlement_sync.request_resync('rs-b')");
  BOOST_TEST(Q().env->count(
                 "SELECT count(*) FROM entitlement_sync.key_uploads WHERE event_id = " + std::to_string(id) +
                 " AND user_id = 'rs-b' AND kind = 'resync' AND NOT full_sync AND state = 'pending'") == 1);
  const long long full_id = call("SELECT entitlement_sync.request_resync('rs-b', true)");
  BOOST_TEST(full_id > id);
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE event_id = " +
                            std::to_string(full_id) + " AND full_sync") == 1);
  try {
    call("SELECT entitlement_sync.request_resync('nope')");
    BOOST_ERROR("request_resync('nope') did not raise");
  } catch (const pqxx::sql_error& e) {
    BOOST_TEST(e.sqlstate() == "P0002", e.what());  // no_data_found
    BOOST_TEST(std::string(e.what()).find("unknown user nope") != std::string::npos, e.what());
  }

  // Admins may call both forms (README: entitlement_admin may request_resync).
  {
    pqxx::work tx(c);
    tx.exec("SET LOCAL ROLE entitlement_admin");
    BOOST_TEST(tx.exec1("SELECT entitlement_sync.request_resync(ARRAY['rs-a', 'rs-c'])")[0].as<long long>() == 2);
    BOOST_TEST(tx.exec1("SELECT entitlement_sync.request_resync('rs-a')")[0].as<long long>() > 0);
    tx.commit();
  }
  BOOST_TEST(resyncs("rs-a", false) == 3);
}

// ---- 2. A burst of uploads for one player is one or two syncs ----

BOOST_AUTO_TEST_CASE(fifty_uploads_within_a_second_are_at_most_two_syncs_and_the_newest_key_wins) {
  fresh_start();
  const std::string user = "coal";
  emu().put_items(user, emulator_instance::make_items(user, 5));
  // 50 distinct keys, each issued a second after the one before: the last upload holds the newest.
  const long long now = static_cast<long long>(std::time(nullptr));
  std::vector<std::string> keys;
  for (int i = 0; i < 50; ++i) keys.push_back(emu().mint_key(user, "collections", now - 100 + i));
  BOOST_TEST_REQUIRE(std::set<std::string>(keys.begin(), keys.end()).size() == keys.size());

  // A Store that takes 1.5 s to answer: the first sync is still running while the other uploads arrive.
  set_latency(1500);
  auto daemon = launch("coal", "[sync]\npoll_interval = 1s\n");
  const auto started = steady::now();
  {
    pqxx::connection c(url());
    for (const auto& key : keys) {
      pqxx::work tx(c);
      tx.exec_params("INSERT INTO entitlement_sync.key_uploads (user_id, collections_key) VALUES ($1, $2)", user,
                     key);
      tx.commit();
      std::this_thread::sleep_for(5ms);
    }
  }
  const double upload_seconds = seconds_since(started);
  BOOST_TEST_MESSAGE("50 uploads in " << upload_seconds << " s");
  BOOST_TEST(upload_seconds < 1.2);
  BOOST_TEST_REQUIRE(wait_done(user, 50, 30s), queue_of(user) << "\n" << daemon->log());

  const auto syncs = emu().stat("queriesByUser", user);
  const auto lines = sync_lines(daemon->log(), user);
  BOOST_TEST_MESSAGE("50 uploads: " << syncs << " collections queries, " << lines.size() << " syncs");
  BOOST_TEST(syncs >= 1);
  BOOST_TEST(syncs <= 2, "one page a sync: more queries means more syncs");
  BOOST_TEST(lines.size() >= 1u);
  BOOST_TEST(lines.size() <= 2u, daemon->log());
  long long events = 0;
  for (const auto& l : lines) {
    BOOST_TEST(l.outcome == "ok");
    events += l.events;
  }
  BOOST_TEST(events == 50, "the syncs' events= add up to every upload");
  BOOST_TEST(events_of(user, "done") == 50);

  const auto stored = query_value(
      url(), "SELECT collections_key FROM entitlement_sync.user_keys WHERE user_id = " + sql_quote(user));
  BOOST_TEST_REQUIRE(stored.has_value());
  const auto at = std::find(keys.begin(), keys.end(), *stored);
  BOOST_TEST((at != keys.end()), "the stored key is none of the uploaded ones");
  BOOST_TEST((at - keys.begin()) == 49, "the stored key is upload #" << (at - keys.begin()) << ", not the newest");
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = 'coal'") ==
             5);
  BOOST_TEST(emu().stat("userOverlaps") == 0);
  stop_cleanly(*daemon, "the daemon");
}

// ---- 3. A resync requested mid-sync runs after it, never beside it ----

BOOST_AUTO_TEST_CASE(a_resync_requested_while_the_player_is_syncing_runs_once_after_it) {
  fresh_start();
  const std::string user = "midsync";
  emu().put_items(user, emulator_instance::make_items(user, 3));
  const auto key = emu().mint_key(user);
  set_latency(1500);
  auto daemon = launch("midsync", "[sync]\npoll_interval = 1s\n");
  Q().env->upload(user, key);
  // The resync comes while the first sync's collections query is at the Store: a second sync started now
  // would overlap it there.
  BOOST_TEST_REQUIRE(wait_for([&] { return stat_of_user("queriesByUser", user) >= 1; }, 15s, 20ms),
                     queue_of(user) << "\n"
                                    << daemon->log());
  Q().env->exec_sql_resync(user);
  BOOST_TEST_REQUIRE(Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = " +
                                    sql_quote(user) + " AND kind = 'upload' AND state = 'running'") == 1,
                     "the resync did not come during the first sync: " << queue_of(user));
  BOOST_TEST_REQUIRE(wait_done(user, 2, 20s), queue_of(user) << "\n" << daemon->log());

  BOOST_TEST(emu().stat("userOverlaps") == 0);
  BOOST_TEST(stat_of_user("queriesByUser", user) == 2);
  const auto lines = sync_lines(daemon->log(), user);
  BOOST_TEST_REQUIRE(lines.size() == 2u, daemon->log());
  BOOST_TEST(lines[0].events == 1);
  BOOST_TEST(lines[1].events == 1);
  // The resync was claimed once the upload's sync had finished, and finished after it.
  BOOST_TEST(
      Q().env->count(
          "SELECT count(*) FROM entitlement_sync.key_uploads u, entitlement_sync.key_uploads r "
          "WHERE u.user_id = 'midsync' AND r.user_id = 'midsync' AND u.kind = 'upload' "
          "AND r.kind = 'resync' AND r.claimed_at >= u.finished_at AND r.finished_at > u.finished_at") == 1,
      queue_of(user));
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = 'midsync'") ==
             3);
  stop_cleanly(*daemon, "the daemon");
}

// ---- 4. Lease fencing ----

BOOST_AUTO_TEST_CASE(a_daemon_that_lost_its_lease_writes_nothing_and_says_so) {
  fresh_start();
  const std::string user = "fence";
  emu().put_items(user, emulator_instance::make_items(user, 4));
  const auto key = emu().mint_key(user);
  set_latency(1500);
  const std::string ini = "[sync]\nlease = 5s\npoll_interval = 1s\nretry_base = 1s\nretry_cap = 2s\n";
  auto a = launch("fence-a", ini);
  Q().env->upload(user, key);
  // A has claimed the player and its collections query is at the Store: freeze A.
  BOOST_TEST_REQUIRE(wait_for([&] { return stat_of_user("queriesByUser", user) >= 1; }, 15s, 10ms),
                     queue_of(user) << "\n"
                                    << a->log());
  // Frozen between two statements: stopped inside a transaction (a lease extension, say), A would hold the
  // event's row lock and B could never take it. Then let it run on a moment and freeze it again.
  for (int tries = 0;; ++tries) {
    a->signal(SIGSTOP);
    std::this_thread::sleep_for(50ms);
    if (Q().env->count("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' OR "
                       "(state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                       " AND query NOT ILIKE 'LISTEN%')") == 0)
      break;
    BOOST_TEST_REQUIRE(tries < 20, "A never stopped outside a transaction");
    a->signal(SIGCONT);
    std::this_thread::sleep_for(5ms);
  }
  const auto frozen = steady::now();
  BOOST_TEST_REQUIRE(
      Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'fence' AND "
                     "state = 'running' AND claimed_by LIKE " +
                     owner_pattern(*a)) == 1,
      "A was not syncing the player when it was stopped: " << queue_of(user) << "\n"
                                                           << a->log());
  const auto lease_at_stop = query_value(url(), "SELECT lease_until FROM entitlement_sync.key_uploads "
                                                "WHERE user_id = 'fence'");
  // The Store's data changes after A was answered: B must see the new item; A's stale answer must not land.
  emu().put_items(user, emulator_instance::make_items("fence-new", 1));

  auto b = launch("fence-b", ini);
  BOOST_TEST_REQUIRE(wait_for(
                         [&] {
                           return Q().env->count(
                                      "SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = "
                                      "'fence' AND state = 'done' AND claimed_by LIKE " +
                                      owner_pattern(*b)) == 1;
                         },
                         30s, 100ms),
                     "B did not take over: " << queue_of(user) << "\n"
                                             << b->log());
  BOOST_TEST_MESSAGE("B finished the player " << seconds_since(frozen) << " s after A was frozen");
  // B took the event only after A's lease had run out.
  BOOST_TEST(
      Q().env->count(
          "SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'fence' AND claimed_at >= " +
          sql_quote(lease_at_stop.value_or("infinity")) + "::timestamptz") == 1,
      "B claimed before " << lease_at_stop.value_or("?") << ": " << queue_of(user));

  const std::string snapshot_sql =
      "SELECT q.state || '|' || q.claimed_by || '|' || q.lease_id || '|' || q.finished_at || '|' || "
      "  u.last_synced_at || '|' || u.watermark || '|' || "
      "  (SELECT count(*) || '|' || max(synced_at) FROM entitlement_sync.entitlements e WHERE e.user_id = 'fence') "
      "FROM entitlement_sync.key_uploads q JOIN entitlement_sync.users u USING (user_id) WHERE q.user_id = 'fence'";
  const auto before = query_value(url(), snapshot_sql);
  BOOST_TEST_REQUIRE(before.has_value());

  a->signal(SIGCONT);
  BOOST_TEST_REQUIRE(a->wait_for_log("outcome=lost-lease", 30s), "A did not report its lost lease: " << a->log());
  const auto lines = sync_lines(a->log(), user);
  BOOST_TEST_REQUIRE(lines.size() == 1u, a->log());
  BOOST_TEST(lines[0].outcome == "lost-lease");
  BOOST_TEST_MESSAGE("A's lease extender "
                     << (a->log().find("ran out and its events were taken up again elsewhere") != std::string::npos
                             ? "also warned"
                             : "did not get to warn"));
  std::this_thread::sleep_for(300ms);
  // B's outcome stands: the event, the player and the entitlements are exactly as B left them.
  BOOST_TEST(query_value(url(), snapshot_sql).value_or("NULL") == *before);
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = 'fence'") ==
             5);
  BOOST_TEST(Q().env->count(
                 "SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = 'fence' AND item_id = "
                 "'fence-new-0'") == 1);
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id = 'fence'") ==
             1);
  const auto b_lines = sync_lines(b->log(), user);
  BOOST_TEST_REQUIRE(b_lines.size() == 1u, b->log());
  BOOST_TEST(b_lines[0].outcome == "ok");
  BOOST_TEST(emu().stat("userOverlaps") == 0);
  stop_cleanly(*a, "daemon A");
  stop_cleanly(*b, "daemon B");
}

// ---- 5. Pruning ----

BOOST_AUTO_TEST_CASE(done_events_are_pruned_in_batches_and_failed_ones_after_keep_failed) {
  fresh_start();
  // A statement-level trigger (the test's own, dropped at the end) notes every DELETE on the queue: how
  // many rows, and how long the youngest of them had been finished.
  exec_sql(url(),
           "DROP TABLE IF EXISTS public.prune_batches; "
           "CREATE TABLE public.prune_batches (n bigint, youngest_age interval, states text); "
           "CREATE OR REPLACE FUNCTION public.note_prune_batch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "  INSERT INTO public.prune_batches SELECT count(*), clock_timestamp() - max(finished_at), "
           "    string_agg(DISTINCT state, ',') FROM old_rows HAVING count(*) > 0; "
           "  RETURN NULL; END $$; "
           "CREATE TRIGGER note_prune_batch AFTER DELETE ON entitlement_sync.key_uploads "
           "  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.note_prune_batch()");
  struct drop_trigger {
    ~drop_trigger() {
      try {
        exec_sql(url(), "DROP TRIGGER IF EXISTS note_prune_batch ON entitlement_sync.key_uploads; "
                        "DROP FUNCTION IF EXISTS public.note_prune_batch(); DROP TABLE IF EXISTS public.prune_batches");
      } catch (...) {
      }
    }
  } cleanup;

  // 30 events done just now, and one that failed an hour ago.
  exec_sql(url(),
           "INSERT INTO entitlement_sync.key_uploads (user_id, state, attempts, claimed_at, finished_at) "
           "SELECT 'prune-' || (i % 5), 'done', 1, now(), now() FROM generate_series(1, 30) i; "
           "INSERT INTO entitlement_sync.key_uploads (user_id, state, attempts, claimed_at, finished_at, last_error) "
           "VALUES ('prune-failed', 'failed', 8, now() - interval '1 hour', now() - interval '1 hour', 'gave up')");
  auto daemon = launch("prune", "[sync]\nkeep_done = 2s\nkeep_failed = 0\nprune_interval = 1s\nprune_batch = 7\n"
                                "poll_interval = 1s\n[metrics]\nlisten = 127.0.0.1:0\n");
  BOOST_TEST_REQUIRE(wait_for(
                         [] {
                           return Q().env->count(
                                      "SELECT count(*) FROM entitlement_sync.key_uploads "
                                      "WHERE state = 'done'") == 0;
                         },
                         15s, 50ms),
                     "done events not all pruned within 15 s: " << daemon->log());
  const auto batches = [] {
    pqxx::connection c(url());
    pqxx::nontransaction tx(c);
    std::vector<std::tuple<long long, double, std::string>> out;
    for (const auto& row : tx.exec("SELECT n, extract(epoch FROM youngest_age)::float8, states "
                                   "FROM public.prune_batches ORDER BY ctid"))
      out.emplace_back(row[0].as<long long>(), row[1].as<double>(), row[2].as<std::string>());
    return out;
  };
  auto done_batches = batches();
  std::ostringstream trace;
  long long deleted = 0;
  for (const auto& [n, age, states] : done_batches) {
    trace << n << " " << states << " (youngest " << age << " s old); ";
    deleted += n;
    BOOST_TEST(n <= 7, "a batch of " << n << " rows, prune_batch is 7");
    BOOST_TEST(age >= 2.0, "an event was pruned " << age << " s after it finished, keep_done is 2 s");
    BOOST_TEST(states == "done");
  }
  BOOST_TEST_MESSAGE("prune batches: " << trace.str());
  BOOST_TEST(deleted == 30);
  BOOST_TEST(done_batches.size() == 5u, trace.str());  // 7 + 7 + 7 + 7 + 2

  // keep_failed = 0 keeps failed events forever: three more rounds change nothing.
  std::this_thread::sleep_for(3s);
  BOOST_TEST(events_of("prune-failed", "failed") == 1);
  BOOST_TEST(batches().size() == done_batches.size());
  long long logged = 0;
  std::string port;
  {
    std::istringstream in(daemon->log());
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("queue: pruned") != std::string::npos) logged += std::stoll(log_field(line, "events"));
      if (port.empty() && line.find("metrics: listening") != std::string::npos)
        port = log_field(line, "port");
    }
  }
  BOOST_TEST(logged == 30, daemon->log());
  BOOST_TEST_REQUIRE(!port.empty(), daemon->log());
  const auto metrics = curl_text("http://127.0.0.1:" + port + "/metrics");
  BOOST_TEST(metric_value(metrics, "entitlement_syncd_events_pruned_total") == 30.0, metrics);
  stop_cleanly(*daemon, "the daemon (keep_failed = 0)");

  // keep_failed = 1s: the failed event goes.
  auto second = launch("prune-failed", "[sync]\nkeep_done = 2s\nkeep_failed = 1s\nprune_interval = 1s\n"
                                       "prune_batch = 7\npoll_interval = 1s\n");
  BOOST_TEST(wait_for([] { return events_of("prune-failed", "failed") == 0; }, 10s, 100ms), second->log());
  BOOST_TEST(second->log().find("queue: pruned events=1") != std::string::npos, second->log());
  const auto all = batches();
  BOOST_TEST_REQUIRE(all.size() == done_batches.size() + 1, trace.str());
  BOOST_TEST(std::get<0>(all.back()) == 1);
  BOOST_TEST(std::get<2>(all.back()) == "failed");
  stop_cleanly(*second, "the daemon (keep_failed = 1s)");
}

// ---- 6. The claim reads the queue through its index ----

BOOST_AUTO_TEST_CASE(the_claim_scans_key_uploads_waiting) {
  fresh_start();
  const auto def = query_value(url(), "SELECT indexdef FROM pg_indexes WHERE schemaname = 'entitlement_sync' "
                                      "AND tablename = 'key_uploads' AND indexname = 'key_uploads_waiting'");
  BOOST_TEST_REQUIRE(def.has_value(), "no index key_uploads_waiting");
  BOOST_TEST(def->find("USING btree (priority, run_after, event_id)") != std::string::npos, *def);
  BOOST_TEST(def->find("WHERE (state = 'pending'::text)") != std::string::npos, *def);

  // The claim's two inner scans and the whole player query, as in src/db/queue.cpp (claim_jobs), limit 64.
  const std::string inner0 =
      "SELECT user_id, priority, run_after, event_id FROM entitlement_sync.key_uploads "
      "WHERE state = 'pending' AND priority = 0 AND run_after <= now() ORDER BY run_after, event_id LIMIT 64 * 8";
  const std::string inner1 =
      "SELECT user_id, priority, run_after, event_id FROM entitlement_sync.key_uploads "
      "WHERE state = 'pending' AND priority = 1 AND run_after <= now() ORDER BY run_after, event_id LIMIT 64 * 8";
  const std::string players =
      "SELECT user_id FROM ("
      "  SELECT q.user_id, min(q.priority) AS priority, min(q.run_after) AS due, min(q.event_id) AS first FROM ("
      "    (" + inner0 + ") UNION ALL (" + inner1 + ")) q "
      "  WHERE NOT EXISTS (SELECT 1 FROM entitlement_sync.key_uploads r "
      "                    WHERE r.user_id = q.user_id AND r.state = 'running') "
      "  GROUP BY q.user_id ORDER BY priority, due, first LIMIT 64) p";

  pqxx::connection c(url());
  pqxx::work tx(c);  // rolled back: the rows below are never seen by anyone else
  // A few thousand finished events, 150 waiting uploads and 50 waiting backfill events.
  tx.exec("INSERT INTO entitlement_sync.key_uploads (user_id, kind, priority, state, finished_at, run_after) "
          "SELECT 'ix-' || (i % 700), CASE WHEN i % 100 = 0 THEN 'backfill' ELSE 'upload' END, "
          "  CASE WHEN i % 100 = 0 THEN 1 ELSE 0 END, "
          "  CASE WHEN i % 25 = 0 THEN 'pending' ELSE 'done' END, "
          "  CASE WHEN i % 25 = 0 THEN NULL ELSE now() END, now() - (i || ' ms')::interval "
          "FROM generate_series(1, 5000) i");
  tx.exec("ANALYZE entitlement_sync.key_uploads");
  auto explain = [&tx](const std::string& sql) {
    std::string plan;
    for (const auto& row : tx.exec("EXPLAIN " + sql)) plan += std::string(row[0].c_str()) + "\n";
    return plan;
  };
  auto uses = [](const std::string& plan) {
    std::size_t n = 0;
    for (auto at = plan.find("key_uploads_waiting"); at != std::string::npos;
         at = plan.find("key_uploads_waiting", at + 1))
      ++n;
    return n;
  };
  for (const bool seqscan : {true, false}) {
    tx.exec(std::string("SET LOCAL enable_seqscan = ") + (seqscan ? "on" : "off"));
    const auto p0 = explain(inner0), p1 = explain(inner1), all = explain(players);
    BOOST_TEST_MESSAGE("enable_seqscan = " << (seqscan ? "on" : "off") << ":\n" << p0 << p1 << all);
    BOOST_TEST(uses(p0) >= 1u, p0);
    BOOST_TEST(uses(p1) >= 1u, p1);
    BOOST_TEST(uses(all) >= 2u, "both arms of the claim's scan: " << all);
    BOOST_TEST(p0.find("Seq Scan") == std::string::npos, p0);
  }
  tx.abort();
}

// ---- 7. Backfill ----

BOOST_AUTO_TEST_CASE(a_backfill_is_paced_yields_to_uploads_skips_dead_keys_and_can_be_cancelled) {
  fresh_start();
  auto daemon = launch("backfill", "[sync]\nbackfill_rate = 5\nconcurrency = 1\npoll_interval = 1s\n");
  // Every bf- player synced once, so their keys are held; then one key is marked dead.
  std::vector<std::pair<std::string, std::string>> uploads;
  for (int i = 0; i < backfill_players; ++i) uploads.emplace_back(numbered("bf-", i), Q().keys.at(numbered("bf-", i)));
  upload_keys(url(), uploads);
  BOOST_TEST_REQUIRE(wait_for([] { return open_events_like("bf-%") == 0; }, 30s, 100ms), daemon->log());
  BOOST_TEST_REQUIRE(
      Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id LIKE 'bf-%' AND "
                     "state = 'done'") == backfill_players);
  const std::string dead = numbered("bf-", 7);
  exec_sql(url(),
           "UPDATE entitlement_sync.user_keys SET collections_key_dead_at = now(), "
           "collections_key_dead_reason = 'test' WHERE user_id = " +
               sql_quote(dead));

  // Each sync now takes a while, so backfill events wait in the queue.
  set_latency(200);
  const auto id = query_value(url(), "SELECT entitlement_sync.request_backfill()");
  BOOST_TEST_REQUIRE(id.has_value());
  const auto started = steady::now();
  // Upload while the backfill runs (its cursor is past "ba-up-"), as soon as backfill events are waiting.
  BOOST_TEST_REQUIRE(wait_for(
                         [] {
                           return Q().env->count(
                                      "SELECT count(*) FROM entitlement_sync.key_uploads WHERE kind = "
                                      "'backfill' AND state = 'pending'") >= 3;
                         },
                         15s, 20ms),
                     queue_of(dead) << "\n"
                                    << daemon->log());
  std::vector<std::pair<std::string, std::string>> late;
  for (int i = 0; i < 3; ++i) late.emplace_back(numbered("ba-up-", i), Q().keys.at(numbered("ba-up-", i)));
  upload_keys(url(), late);
  // A claim that was already under way may still take a backfill event; after it, uploads come first.
  std::this_thread::sleep_for(150ms);
  exec_sql(url(), "DROP TABLE IF EXISTS public.backfill_waiting; CREATE TABLE public.backfill_waiting AS "
                  "SELECT event_id FROM entitlement_sync.key_uploads WHERE kind = 'backfill' AND state = 'pending'");
  const auto waiting = Q().env->count("SELECT count(*) FROM public.backfill_waiting");
  BOOST_TEST_REQUIRE(waiting > 0, "no backfill event was waiting when the uploads came");

  BOOST_TEST_REQUIRE(
      wait_for(
          [&] {
            return Q().env->count("SELECT count(*) FROM entitlement_sync.backfills WHERE backfill_id = " +
                                  *id + " AND finished_at IS NOT NULL") == 1 &&
                   Q().env->count(
                       "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state IN "
                       "('pending', 'running')") == 0;
          },
          40s, 100ms),
      "backfill not finished: " << Q().env->count("SELECT queued FROM entitlement_sync.backfills") << "\n"
                                << daemon->log());
  BOOST_TEST_MESSAGE("backfill of " << backfill_players - 1 << " players at 5/s: " << seconds_since(started) << " s");

  // The uploads were claimed before, and done before, every backfill event that was waiting.
  BOOST_TEST(
      Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id LIKE 'ba-up-%' AND "
                     "kind = 'upload' AND state = 'done'") == 3);
  BOOST_TEST(
      Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads u, entitlement_sync.key_uploads b "
                     "WHERE u.user_id LIKE 'ba-up-%' AND u.kind = 'upload' "
                     "AND b.event_id IN (SELECT event_id FROM public.backfill_waiting) "
                     "AND (u.finished_at >= b.finished_at OR u.claimed_at > b.claimed_at)") == 0,
      waiting << " backfill events waited when the uploads came");
  // One backfill event for every player with a usable key, none for the dead key, all done.
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE kind = 'backfill'") ==
             backfill_players - 1);
  BOOST_TEST(Q().env->count(
                 "SELECT count(*) FROM (SELECT user_id FROM entitlement_sync.key_uploads WHERE kind = "
                 "'backfill' AND state = 'done' GROUP BY user_id HAVING count(*) = 1) x WHERE user_id LIKE "
                 "'bf-%'") == backfill_players - 1);
  BOOST_TEST(Q().env->count(
                 "SELECT count(*) FROM entitlement_sync.key_uploads WHERE kind = 'backfill' AND user_id = " +
                 sql_quote(dead)) == 0);
  BOOST_TEST(Q().env->count("SELECT queued FROM entitlement_sync.backfills WHERE backfill_id = " + *id) ==
             backfill_players - 1);
  // backfill_rate = 5: at most 10 at once, 5 more a second, so 29 players are queued over 4 s at least.
  const auto span = query_value(url(), "SELECT extract(epoch FROM max(created_at) - min(created_at)) "
                                       "FROM entitlement_sync.key_uploads WHERE kind = 'backfill'");
  BOOST_TEST_MESSAGE("backfill events queued over " << span.value_or("?") << " s");
  BOOST_TEST(std::stod(span.value_or("0")) >= 3.0);
  BOOST_TEST(query_value(url(), "SELECT entitlement_sync.cancel_backfill(" + *id + ")").value_or("NULL") == "f",
             "a finished backfill cannot be cancelled");

  // A second backfill, cancelled while its events wait.
  const auto before =
      Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE kind = 'backfill'");
  const auto id2 = query_value(url(), "SELECT entitlement_sync.request_backfill(true)");
  BOOST_TEST_REQUIRE(id2.has_value());
  BOOST_TEST_REQUIRE(wait_for(
                         [] {
                           return Q().env->count(
                                      "SELECT count(*) FROM entitlement_sync.key_uploads WHERE kind = "
                                      "'backfill' AND state = 'pending'") >= 2;
                         },
                         15s, 20ms),
                     daemon->log());
  BOOST_TEST(query_value(url(), "SELECT entitlement_sync.cancel_backfill(" + *id2 + ")").value_or("NULL") == "t");
  BOOST_TEST(
      Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE kind = 'backfill' AND state = "
                     "'pending'") == 0);
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.backfills WHERE backfill_id = " + *id2 +
                            " AND cancelled_at IS NOT NULL AND full_sync") == 1);
  const auto after_cancel =
      Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE kind = 'backfill'");
  const auto queued =
      Q().env->count("SELECT queued FROM entitlement_sync.backfills WHERE backfill_id = " + *id2);
  // The events already started stay and finish; the waiting ones are gone.
  BOOST_TEST(after_cancel - before < queued, "nothing was dropped: " << after_cancel - before << " of " << queued);
  std::this_thread::sleep_for(2500ms);  // two feeding rounds and more
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE kind = 'backfill'") ==
                 after_cancel,
             "a cancelled backfill went on queueing players");
  BOOST_TEST(Q().env->count("SELECT queued FROM entitlement_sync.backfills WHERE backfill_id = " + *id2) ==
             queued);
  BOOST_TEST(Q().env->count(
                 "SELECT count(*) FROM entitlement_sync.key_uploads WHERE state IN ('pending', 'running')") ==
             0);
  BOOST_TEST(query_value(url(), "SELECT entitlement_sync.cancel_backfill(" + *id2 + ")").value_or("NULL") == "f");
  exec_sql(url(), "DROP TABLE public.backfill_waiting");
  stop_cleanly(*daemon, "the daemon");
}

// ---- 8. The per-player Store budget ----

namespace {

struct budget_run {
  double seconds = 0;         // from the upload to the third sync done
  long long throttled = 0;    // 429s the Store sent
  long long queries = 0;      // collections queries the Store saw for the player
  long long early = 0;        // requests that came before a Retry-After had passed
};

// The Store allows 3 requests per player per 2 s. A daemon with [store] player_requests = `requests` per
// player_window = 2s syncs a player of 25 items in pages of 10 three times: one upload, then an incremental
// and a full resync, each after the previous one is done; 9 requests in all.
budget_run sync_three_times(const std::string& user, int requests) {
  fresh_start();
  emu().control("POST", "/_emulator/settings", R"({"userBudget":"3/2"})");
  emu().put_items(user, emulator_instance::make_items(user, 25));
  const auto key = emu().mint_key(user);
  auto daemon = launch(user, "[store]\nmax_page_size = 10\nplayer_window = 2s\nplayer_requests = " +
                                 std::to_string(requests) +
                                 "\n[sync]\npoll_interval = 1s\nretry_base = 1s\nretry_cap = 2s\n");
  const auto started = steady::now();
  Q().env->upload(user, key);
  BOOST_TEST_REQUIRE(wait_done(user, 1, 30s), queue_of(user) << "\n" << daemon->log());
  Q().env->exec_sql_resync(user);
  BOOST_TEST_REQUIRE(wait_done(user, 2, 30s), queue_of(user) << "\n" << daemon->log());
  exec_sql(url(), "SELECT entitlement_sync.request_resync(" + sql_quote(user) + ", true)");
  BOOST_TEST_REQUIRE(wait_done(user, 3, 30s), queue_of(user) << "\n" << daemon->log());
  budget_run r;
  r.seconds = seconds_since(started);
  r.throttled = emu().stat("statusCounts", "429");
  r.queries = stat_of_user("queriesByUser", user);
  r.early = emu().stat("earlyAfterRetryAfter");
  BOOST_TEST_MESSAGE("player_requests = " << requests << ": 3 syncs in " << r.seconds << " s, " << r.queries
                                          << " queries, " << r.throttled << " answered 429");
  BOOST_TEST_REQUIRE(Q().env->count("SELECT count(*) FROM entitlement_sync.entitlements WHERE user_id = " +
                                    sql_quote(user)) == 25);
  BOOST_TEST_REQUIRE(daemon->running(), daemon->log());
  daemon->signal(SIGTERM);
  BOOST_TEST_REQUIRE((daemon->wait(30s) == std::optional<int>(0)), daemon->log());
  if (r.throttled > 0) BOOST_TEST_MESSAGE(daemon->log());
  return r;
}

}  // namespace

// A budget exactly equal to the Store's: the Store counts a request when it arrives, after the daemon admitted
// it (token, pooled connection, TLS handshake), so the daemon counts each slot from when the answer came back.
BOOST_AUTO_TEST_CASE(a_player_budget_equal_to_the_stores_avoids_every_429) {
  const auto r = sync_three_times("budget-polite", 3);
  BOOST_TEST_REQUIRE(r.seconds >= 4.0, "9 requests at 3 per 2 s need 4 s at least: the daemon did not pace");
  BOOST_TEST((r.throttled == 0 && r.queries == 9),
             r.throttled << " answers were 429 and the Store saw " << r.queries << " queries for 9 pages");
}

BOOST_AUTO_TEST_CASE(a_player_budget_larger_than_the_stores_runs_into_429s) {
  // The control for the case above: the same Store, a daemon that allows itself 200 requests per 2 s.
  const auto r = sync_three_times("budget-greedy", 200);
  BOOST_TEST(r.throttled > 0);
  BOOST_TEST(r.queries > 9, "the throttled pages were asked for again");
  BOOST_TEST(r.early == 0, "no request came before its Retry-After");
}

// ---- 9. The global Store rate limit ----

namespace {

struct rate_run {
  double store_span = 0;  // first to last collections query seen at the Store (polled)
  double db_span = 0;     // first claim to last sync finished
};

// Uploads the 60 players of `prefix` to a daemon with this [store] max_requests_per_second and times them.
rate_run time_sixty_players(const std::string& prefix, int max_requests_per_second) {
  auto daemon = launch(prefix, "[store]\nmax_requests_per_second = " + std::to_string(max_requests_per_second) +
                                   "\n[sync]\npoll_interval = 1s\n");
  emu().control("POST", "/_emulator/stats/reset");
  std::vector<std::pair<std::string, std::string>> uploads;
  for (int i = 0; i < rate_players; ++i) uploads.emplace_back(numbered(prefix, i), Q().keys.at(numbered(prefix, i)));
  upload_keys(url(), uploads);
  std::optional<steady::time_point> first, last;
  // Polled without a pause: the spans are timed by these looks.
  wait_for(
      [&] {
        const auto n = emu().stat("collectionsQueries");
        const auto t = steady::now();
        if (n >= 1 && !first) first = t;
        if (n >= rate_players) last = t;
        return last.has_value();
      },
      30s, 0ms);
  BOOST_TEST_REQUIRE(last.has_value(), prefix << ": not every player was queried: " << daemon->log());
  BOOST_TEST_REQUIRE(wait_for([&] { return open_events_like(prefix + "%") == 0; }, 30s, 50ms), daemon->log());
  rate_run r;
  r.store_span = std::chrono::duration<double>(*last - *first).count();
  r.db_span = std::stod(query_value(url(),
                                    "SELECT extract(epoch FROM max(finished_at) - min(claimed_at)) "
                                    "FROM entitlement_sync.key_uploads WHERE user_id LIKE " +
                                        sql_quote(prefix + "%"))
                            .value_or("0"));
  BOOST_TEST(Q().env->count("SELECT count(*) FROM entitlement_sync.key_uploads WHERE user_id LIKE " +
                            sql_quote(prefix + "%") + " AND state = 'done'") == rate_players);
  BOOST_TEST(emu().stat("statusCounts", "429") == 0);
  stop_cleanly(*daemon, prefix);
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(max_requests_per_second_spreads_sixty_players_over_two_seconds) {
  fresh_start();
  // 20 a second with a burst of 20: the 60th query cannot go before 2 s after the first.
  const auto limited = time_sixty_players("rate-l-", 20);
  BOOST_TEST_MESSAGE("max_requests_per_second = 20: first to last Store query " << limited.store_span
                                                                                << " s, claim to last done "
                                                                                << limited.db_span << " s");
  BOOST_TEST(limited.db_span >= 1.8);
  BOOST_TEST(limited.store_span >= 1.5);  // polled through curl: a little less exact
  const auto unlimited = time_sixty_players("rate-u-", 0);
  BOOST_TEST_MESSAGE("max_requests_per_second = 0: first to last Store query " << unlimited.store_span
                                                                               << " s, claim to last done "
                                                                               << unlimited.db_span << " s");
}

BOOST_AUTO_TEST_SUITE_END()
