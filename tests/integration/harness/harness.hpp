// Integration-test harness: a throwaway PostgreSQL, the Store emulator over verified TLS, and the real
// entitlement-syncd binary, each a child process, as a user would run them.
#pragma once

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace esd::test {

namespace fs = std::filesystem;

// A temporary directory, removed at destruction. Readable by the postgres user when we run as root.
class temp_dir {
 public:
  explicit temp_dir(const std::string& prefix);
  ~temp_dir();
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct process_result {
  int exit_code = -1;  // -signal when killed by a signal
  std::string output;  // stdout and stderr together
};

// The one way the tests wait: polls `done` every `every` until it holds (true) or the timeout passes
// (false, after one last look), for conditions a running daemon reaches in its own time, however slow the
// machine is.
bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout,
              std::chrono::milliseconds every = std::chrono::milliseconds(100));

double seconds_since(std::chrono::steady_clock::time_point t);
long long unix_now();  // seconds

std::string read_text(const fs::path& p);
void write_text(const fs::path& p, const std::string& text);

// Runs argv to completion (bounded by timeout; killed after it) and returns its status and output.
process_result run_process(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                           const std::map<std::string, std::string>& env = {});

// A child process running in the background with output to a log file.
class background_process {
 public:
  background_process(std::vector<std::string> argv, fs::path log_file,
                     const std::map<std::string, std::string>& env = {});
  ~background_process();  // SIGKILL if still running
  background_process(const background_process&) = delete;
  background_process& operator=(const background_process&) = delete;

  int pid() const { return pid_; }
  void signal(int sig);
  // Waits for exit; returns the exit code (-signal if killed), or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string log() const;
  // Waits until the log contains text (true), the process exits or the timeout passes (false).
  bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  int pid_ = -1;
  std::optional<int> status_;
  fs::path log_file_;
};

// Runs scripts/lib/stack.sh, the one script that starts PostgreSQL and the emulator, with these arguments.
std::vector<std::string> stack_command(const std::vector<std::string>& args);

// A throwaway PostgreSQL (stack.sh pg-init, pg-start, createdb), stopped at destruction.
class postgres_instance {
 public:
  postgres_instance();
  ~postgres_instance();
  // libpq URI of the "entitlements" database.
  const std::string& url() const { return url_; }
  void stop();
  void start();

 private:
  temp_dir dir_;
  std::string url_;
  bool running_ = false;
};

// The Store + Entra emulator (stack.sh emulator), a child process killed at destruction.
class emulator_instance {
 public:
  explicit emulator_instance(std::vector<std::string> extra_args = {});
  const std::string& base_url() const { return base_url_; }  // https://localhost:PORT
  const fs::path& ca_file() const { return ca_file_; }
  const fs::path& client_secret_file() const { return secret_file_; }
  static constexpr const char* tenant_id = "00000000-0000-0000-0000-000000000000";
  static constexpr const char* client_id = "11111111-1111-1111-1111-111111111111";
  static constexpr const char* client_secret = "test-client-secret";
  std::string log() const { return process_->log(); }

  // The control API (/_emulator/...). Returns the response body; fails the test on a non-2xx status.
  std::string control(const std::string& method, const std::string& path, const std::string& json_body = "");
  // A Store ID key the emulator signs; refresh_uri replaces the renewal URL its claims name.
  std::string mint_key(const std::string& user_id, const std::string& kind = "collections",
                       std::optional<long long> issued_at = std::nullopt,
                       std::optional<long long> expires_at = std::nullopt,
                       const std::string& refresh_uri = "");
  // POST /_emulator/faults: one fault rule, a JSON object text.
  void add_fault(const std::string& rule_json);
  // PUT items for a player: a JSON array text of v6 items.
  void put_items(const std::string& user_id, const std::string& items_json_array);
  // PUT /_emulator/catalog: the free products grants may grant, replacing the catalog; a JSON array text of
  // {productId, skuId, availabilityId, productType, title}.
  void put_catalog(const std::string& products_json_array);
  // PUT a player's subscriptions (what the recurrences query serves), replacing them: a JSON array text of
  // recurrence items ({productId, skuId, recurrenceState, ...}; id and dates filled in when missing).
  void put_subscriptions(const std::string& user_id, const std::string& subscriptions_json_array);
  // The grant orders the emulator made (GET /_emulator/orders) as a JSON array text of
  // {userId, orderId, productId, skuId, availabilityId, quantity, itemId, lineItemId, createdTime}.
  std::string grants();
  // N generated v6 items "<prefix>-0".."<prefix>-(N-1)" as a JSON array text.
  static std::string make_items(const std::string& prefix, int n, const std::string& status = "Active");
  boost::json::value stats();  // GET /_emulator/stats
  long long stat(const std::string& name);
  // An entry of a map-valued stat (e.g. statusCounts/"429"), 0 when absent.
  long long stat(const std::string& map, const std::string& key);
  // How many items the emulator holds for each player (GET /_emulator/players).
  std::map<std::string, long long> item_counts();

 private:
  temp_dir dir_;
  fs::path ca_file_, secret_file_;
  std::string base_url_;
  std::unique_ptr<background_process> process_;
};

// Many players for the emulator's --seed, so hundreds start with one process instead of a control call each,
// and the keys the emulator mints for them (--keys-out).
class seeded_players {
 public:
  seeded_players();
  // items_json_array: a JSON array text of v6 items, such as emulator_instance::make_items() gives.
  void add(const std::string& user_id, const std::string& items_json_array);
  std::size_t size() const { return count_; }
  // Writes the seed file; returns {"--seed", FILE, "--keys-out", FILE} for the emulator's command line.
  std::vector<std::string> emulator_args() const;
  // user_id -> collections key, from the --keys-out file (once the emulator has started).
  std::map<std::string, std::string> collections_keys() const;

 private:
  temp_dir dir_;
  std::string players_;  // the JSON objects of the "players" array, comma-separated
  std::size_t count_ = 0;
};

// INSERTs (user_id, collections_key) rows into key_uploads in one transaction, as a game backend would.
void upload_keys(const std::string& db_url, const std::vector<std::pair<std::string, std::string>>& user_keys);

// A config file for the daemon pointing at the database and the emulator.
fs::path write_daemon_config(const fs::path& dir, const std::string& db_url, const emulator_instance& emu,
                             const std::string& extra_ini = "");

struct daemon_paths {
  static std::string daemon_bin();
  static std::string emulator_bin();
};

// Runs `entitlement-syncd --config CFG ARGS...` to completion.
process_result run_daemon(const fs::path& config, const std::vector<std::string>& args,
                          std::chrono::seconds timeout = std::chrono::seconds(120));

// Starts `entitlement-syncd --config CFG ARGS...` in the background, its output in log_file.
std::unique_ptr<background_process> start_daemon(const fs::path& config, const fs::path& log_file,
                                                 const std::vector<std::string>& args = {"run"});

// One value of a query, as text; nullopt for NULL. Fails the test when the query returns no row.
std::optional<std::string> query_value(const std::string& db_url, const std::string& sql);
long long query_count(const std::string& db_url, const std::string& sql);
void exec_sql(const std::string& db_url, const std::string& sql);

// The standard environment: a PostgreSQL with the schema migrated, an emulator, a config file.
struct environment {
  environment(std::vector<std::string> emulator_args = {}, const std::string& extra_ini = "");
  temp_dir work{"esd-env"};
  postgres_instance pg;
  emulator_instance emu;
  fs::path config;
  process_result drain(std::chrono::seconds timeout = std::chrono::seconds(120));
  // A drain that must exit 0 (the test stops otherwise), its output checked for credentials.
  process_result drain_ok(std::chrono::seconds timeout = std::chrono::seconds(180));
  long long count(const std::string& sql) const { return query_count(pg.url(), sql); }
  std::optional<std::string> value(const std::string& sql) const { return query_value(pg.url(), sql); }
  void exec(const std::string& sql) const { exec_sql(pg.url(), sql); }
  void upload(const std::string& user_id, const std::optional<std::string>& collections_key,
              const std::optional<std::string>& purchase_key = std::nullopt);
  // SELECT entitlement_sync.request_resync(user_id) (incremental).
  void exec_sql_resync(const std::string& user_id);
};

// One environment for every test of a file, as a Boost.Test global fixture:
//   struct file_env : shared_environment { file_env() : shared_environment("[sync]\n...") {} };
//   BOOST_TEST_GLOBAL_FIXTURE(file_env);
// and E() is that environment.
class shared_environment {
 public:
  explicit shared_environment(const std::string& extra_ini = "", std::vector<std::string> emulator_args = {});
  ~shared_environment();
  shared_environment(const shared_environment&) = delete;
  shared_environment& operator=(const shared_environment&) = delete;

 private:
  environment env_;
};
environment& E();

// A literal for SQL text: single quotes doubled (standard_conforming_strings is on).
std::string sql_quote(const std::string& text);

// Fails the test when `text` (a log, an error, a page) holds a credential: a JWT (Store ID keys and Entra
// tokens alike start "eyJ") or the emulator's client secret. Names the first line that does.
void check_no_credentials(const std::string& text, const std::string& where);

// The "sync ..." lines of a daemon's log: README promises user=, first_event=, events= and outcome=.
struct sync_line {
  std::string user, outcome;
  long long first_event = -1, events = 0;
};
// The value of `name=` in a log line ("" when absent).
std::string log_field(const std::string& line, const std::string& name);
// Every sync line, or only those of `user` when it is not empty.
std::vector<sync_line> sync_lines(const std::string& log, const std::string& user = "");

// SIGTERM, then a clean exit (0) within 30 s.
void stop_cleanly(background_process& daemon, const std::string& name);

}  // namespace esd::test
