// PostgreSQL, the Store emulator and the daemon, started the way an operator would start them.
#include <unistd.h>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <thread>

#include "harness/harness.hpp"

namespace esd::test {

namespace {

fs::path find_postgres_bin() {
  fs::path best;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql")) {
    if (fs::exists(e.path() / "bin" / "initdb") && e.path() > best) best = e.path();
  }
  BOOST_TEST_REQUIRE(!best.empty(), "PostgreSQL server binaries not found under /usr/lib/postgresql");
  return best / "bin";
}

// As root, PostgreSQL's tools must run as the postgres user.
std::vector<std::string> as_postgres(std::vector<std::string> argv) {
  if (::geteuid() != 0) return argv;
  std::vector<std::string> out{"runuser", "-u", "postgres", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string daemon_paths::daemon_bin() { return ESD_DAEMON_BIN; }
std::string daemon_paths::emulator_bin() { return ESD_EMULATOR_BIN; }

postgres_instance::postgres_instance() : dir_("esd-pg"), bin_(find_postgres_bin()) {
  auto r = run_process(as_postgres({(bin_ / "initdb").string(), "-D", (dir_.path() / "data").string(), "-A",
                                    "trust", "-U", "postgres", "--nosync", "-E", "UTF8", "--locale=C"}),
                       std::chrono::seconds(120));
  BOOST_TEST_REQUIRE(r.exit_code == 0, "initdb failed: " << r.output);
  url_ = "postgresql:///entitlements?host=" + dir_.path().string() + "&port=5432&user=postgres";
  start();
  r = run_process(as_postgres({(bin_ / "createdb").string(), "-h", dir_.path().string(), "-p", "5432", "-U",
                               "postgres", "entitlements"}),
                  std::chrono::seconds(60));
  BOOST_TEST_REQUIRE(r.exit_code == 0, "createdb failed: " << r.output);
}

postgres_instance::~postgres_instance() { stop(); }

void postgres_instance::start() {
  const std::string opts = "-k " + dir_.path().string() +
                           " -c listen_addresses='' -p 5432 -c fsync=off -c synchronous_commit=off"
                           " -c full_page_writes=off -c max_connections=200";
  auto r = run_process(as_postgres({(bin_ / "pg_ctl").string(), "-w", "-t", "60", "-D",
                                    (dir_.path() / "data").string(), "-l", (dir_.path() / "server.log").string(),
                                    "-o", opts, "start"}),
                       std::chrono::seconds(90));
  BOOST_TEST_REQUIRE(r.exit_code == 0, "pg_ctl start failed: " << r.output);
  running_ = true;
}

void postgres_instance::stop() {
  if (!running_) return;
  run_process(as_postgres({(bin_ / "pg_ctl").string(), "-w", "-D", (dir_.path() / "data").string(), "-m",
                           "fast", "stop"}),
              std::chrono::seconds(60));
  running_ = false;
}

emulator_instance::emulator_instance(std::vector<std::string> extra_args) : dir_("esd-emu") {
  ca_file_ = dir_.path() / "ca.pem";
  secret_file_ = dir_.path() / "client_secret";
  write_text(secret_file_, "test-client-secret\n");
  auto ready = dir_.path() / "url";
  std::vector<std::string> argv{daemon_paths::emulator_bin(), "--listen", "127.0.0.1:0", "--ready-file",
                                ready.string(), "--cert-out", ca_file_.string(), "--tenant-id", tenant_id,
                                "--client-id", client_id, "--client-secret-file", secret_file_.string()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<background_process>(argv, dir_.path() / "emulator.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!fs::exists(ready)) {
    BOOST_TEST_REQUIRE(process_->running(), "the emulator exited: " << process_->log());
    BOOST_TEST_REQUIRE((std::chrono::steady_clock::now() < deadline), "the emulator did not start");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  base_url_ = read_text(ready);
  while (!base_url_.empty() && (base_url_.back() == '\n' || base_url_.back() == '\r')) base_url_.pop_back();
}

std::string emulator_instance::control(const std::string& method, const std::string& path,
                                       const std::string& json_body) {
  auto body_file = dir_.path() / "control-body.json";
  write_text(body_file, json_body);
  std::vector<std::string> argv{"curl", "-sS", "--max-time", "30", "--cacert", ca_file_.string(), "-X", method,
                                "-H", "Content-Type: application/json", "-w", "\n%{http_code}"};
  if (!json_body.empty()) {
    argv.push_back("--data-binary");
    argv.push_back("@" + body_file.string());
  }
  argv.push_back(base_url_ + path);
  auto r = run_process(argv, std::chrono::seconds(40));
  BOOST_TEST_REQUIRE(r.exit_code == 0, "curl " << method << " " << path << " failed: " << r.output);
  auto nl = r.output.rfind('\n');
  BOOST_TEST_REQUIRE(nl != std::string::npos);
  int status = std::atoi(r.output.c_str() + nl + 1);
  std::string body = r.output.substr(0, nl);
  BOOST_TEST_REQUIRE((status >= 200 && status < 300), method << " " << path << " -> " << status << ": " << body);
  return body;
}

std::string emulator_instance::mint_key(const std::string& user_id, const std::string& kind,
                                        std::optional<long long> issued_at, std::optional<long long> expires_at) {
  boost::json::object req{{"userId", user_id}, {"kind", kind}};
  if (issued_at) req["issuedAt"] = *issued_at;
  if (expires_at) req["expiresAt"] = *expires_at;
  auto body = boost::json::parse(control("POST", "/_emulator/keys", boost::json::serialize(req)));
  return std::string(body.at("key").as_string());
}

void emulator_instance::put_items(const std::string& user_id, const std::string& items_json_array) {
  control("PUT", "/_emulator/players/" + user_id + "/items", "{\"items\":" + items_json_array + "}");
}

void emulator_instance::put_catalog(const std::string& products_json_array) {
  control("PUT", "/_emulator/catalog", products_json_array);
}

void emulator_instance::put_subscriptions(const std::string& user_id,
                                          const std::string& subscriptions_json_array) {
  control("PUT", "/_emulator/players/" + user_id + "/subscriptions", subscriptions_json_array);
}

std::string emulator_instance::grants() {
  auto v = boost::json::parse(control("GET", "/_emulator/orders"));
  return boost::json::serialize(v.at("orders"));
}

std::string emulator_instance::make_items(const std::string& prefix, int n, const std::string& status) {
  boost::json::array items;
  for (int i = 0; i < n; ++i) {
    char date[64];
    std::snprintf(date, sizeof date, "2024-%02d-%02dT10:%02d:%02d.1234567+00:00", 1 + i % 12, 1 + i % 28,
                  i % 60, (i * 7) % 60);
    items.push_back(boost::json::object{
        {"itemId", prefix + "-" + std::to_string(i)},
        {"productId", "9P" + std::to_string(100000 + i)},
        {"skuId", "0010"},
        {"productType", i % 3 == 0 ? "Game" : "Durable"},
        {"status", status},
        {"quantity", 1},
        {"acquiredDate", date},
        {"startDate", date},
        {"endDate", "9999-12-31T23:59:59.9999999+00:00"},
        {"transactionId", "tx-" + prefix + "-" + std::to_string(i)},
        {"orderId", "order-" + prefix + "-" + std::to_string(i)}});
  }
  return boost::json::serialize(items);
}

long long emulator_instance::stat(const std::string& name) {
  auto v = boost::json::parse(control("GET", "/_emulator/stats"));
  auto* p = v.as_object().if_contains(name);
  BOOST_TEST_REQUIRE(p != nullptr, "no emulator stat " << name);
  return p->to_number<long long>();
}

long long emulator_instance::stat(const std::string& map, const std::string& key) {
  auto v = boost::json::parse(control("GET", "/_emulator/stats"));
  auto* m = v.as_object().if_contains(map);
  if (!m || !m->is_object()) return 0;
  auto* p = m->as_object().if_contains(key);
  return p && p->is_number() ? p->to_number<long long>() : 0;
}

std::map<std::string, long long> emulator_instance::item_counts() {
  auto v = boost::json::parse(control("GET", "/_emulator/players"));
  std::map<std::string, long long> out;
  for (const auto& [id, n] : v.at("players").as_object()) out[std::string(id)] = n.to_number<long long>();
  return out;
}

seeded_players::seeded_players() : dir_("esd-seed") {}

void seeded_players::add(const std::string& user_id, const std::string& items_json_array) {
  if (count_++) players_ += ',';
  players_ += "{\"userId\":" + boost::json::serialize(boost::json::value(user_id)) + ",\"items\":" +
              items_json_array + "}";
}

std::vector<std::string> seeded_players::emulator_args() const {
  const auto seed = dir_.path() / "seed.json";
  write_text(seed, "{\"players\":[" + players_ + "]}");
  return {"--seed", seed.string(), "--keys-out", (dir_.path() / "keys.csv").string()};
}

std::map<std::string, std::string> seeded_players::collections_keys() const {
  std::istringstream in(read_text(dir_.path() / "keys.csv"));
  std::map<std::string, std::string> out;
  std::string line;
  std::getline(in, line);  // user_id,collections_key,purchase_key
  while (std::getline(in, line)) {
    const auto a = line.find(',');
    const auto b = a == std::string::npos ? a : line.find(',', a + 1);
    BOOST_TEST_REQUIRE(b != std::string::npos, "bad --keys-out line: " << line.substr(0, 40));
    out[line.substr(0, a)] = line.substr(a + 1, b - a - 1);
  }
  BOOST_TEST_REQUIRE(out.size() >= count_, "the emulator wrote " << out.size() << " keys for " << count_
                                                                  << " seeded players");
  return out;
}

void upload_keys(const std::string& db_url, const std::vector<std::pair<std::string, std::string>>& user_keys) {
  pqxx::connection c(db_url);
  pqxx::work tx(c);
  for (const auto& [user, key] : user_keys)
    tx.exec_params("INSERT INTO entitlement_sync.key_uploads (user_id, collections_key) VALUES ($1, $2)", user,
                   key);
  tx.commit();
}

fs::path write_daemon_config(const fs::path& dir, const std::string& db_url, const emulator_instance& emu,
                             const std::string& extra_ini) {
  auto path = dir / "entitlement-syncd.conf";
  std::ostringstream s;
  s << "[database]\nurl = " << db_url << "\n\n"
    << "[entra]\ntenant_id = " << emulator_instance::tenant_id << "\nclient_id = " << emulator_instance::client_id
    << "\nclient_secret_file = " << emu.client_secret_file().string() << "\ntoken_url = " << emu.base_url() << "/"
    << emulator_instance::tenant_id << "/oauth2/v2.0/token\n\n"
    << "[store]\ncollections_url = " << emu.base_url() << "\npurchase_url = " << emu.base_url()
    << "\nca_file = " << emu.ca_file().string() << "\n\n"
    << extra_ini;
  write_text(path, s.str());
  return path;
}

process_result run_daemon(const fs::path& config, const std::vector<std::string>& args, std::chrono::seconds timeout) {
  std::vector<std::string> argv{daemon_paths::daemon_bin(), "--config", config.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, timeout);
}

std::unique_ptr<background_process> start_daemon(const fs::path& config, const fs::path& log_file,
                                                 const std::vector<std::string>& args) {
  std::vector<std::string> argv{daemon_paths::daemon_bin(), "--config", config.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<background_process>(argv, log_file);
}

std::optional<std::string> query_value(const std::string& db_url, const std::string& sql) {
  pqxx::connection c(db_url);
  pqxx::nontransaction tx(c);
  auto r = tx.exec(sql);
  BOOST_TEST_REQUIRE(!r.empty(), "no row from: " << sql);
  if (r[0][0].is_null()) return std::nullopt;
  return r[0][0].as<std::string>();
}

long long query_count(const std::string& db_url, const std::string& sql) {
  auto v = query_value(db_url, sql);
  BOOST_TEST_REQUIRE(v.has_value(), "NULL from: " << sql);
  return std::stoll(*v);
}

void exec_sql(const std::string& db_url, const std::string& sql) {
  pqxx::connection c(db_url);
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}

environment::environment(std::vector<std::string> emulator_args, const std::string& extra_ini)
    : emu(std::move(emulator_args)) {
  config = write_daemon_config(work.path(), pg.url(), emu, extra_ini);
  auto r = run_daemon(config, {"migrate"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, "migrate failed: " << r.output);
}

process_result environment::drain(std::chrono::seconds timeout) {
  return run_daemon(config, {"run", "--drain"}, timeout);
}

void environment::upload(const std::string& user_id, const std::optional<std::string>& collections_key,
                         const std::optional<std::string>& purchase_key) {
  pqxx::connection c(pg.url());
  pqxx::work tx(c);
  tx.exec_params(
      "INSERT INTO entitlement_sync.key_uploads (user_id, collections_key, purchase_key) VALUES ($1, $2, $3)",
      user_id, collections_key, purchase_key);
  tx.commit();
}

}  // namespace esd::test

namespace esd::test {
void environment::exec_sql_resync(const std::string& user_id) {
  pqxx::connection c(pg.url());
  pqxx::work tx(c);
  tx.exec_params("SELECT entitlement_sync.request_resync($1)", user_id);
  tx.commit();
}
}  // namespace esd::test
