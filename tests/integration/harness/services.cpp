// The daemon as an operator runs it, the database as a game backend and a test read it, and the standard
// environment of PostgreSQL, emulator and config file.
#include <boost/test/unit_test.hpp>

#include <sstream>

#include "harness/harness.hpp"

namespace esd::test {

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

void environment::exec_sql_resync(const std::string& user_id) {
  pqxx::connection c(pg.url());
  pqxx::work tx(c);
  tx.exec_params("SELECT entitlement_sync.request_resync($1)", user_id);
  tx.commit();
}

process_result environment::drain_ok(std::chrono::seconds timeout) {
  auto r = drain(timeout);
  BOOST_TEST_REQUIRE(r.exit_code == 0, "drain failed: " << r.output);
  check_no_credentials(r.output, "the draining daemon");
  return r;
}

namespace {
environment* shared_instance = nullptr;
}  // namespace

shared_environment::shared_environment(const std::string& extra_ini, std::vector<std::string> emulator_args)
    : env_(std::move(emulator_args), extra_ini) {
  shared_instance = &env_;
}

shared_environment::~shared_environment() { shared_instance = nullptr; }

environment& E() {
  BOOST_TEST_REQUIRE(shared_instance != nullptr, "no shared_environment fixture in this test file");
  return *shared_instance;
}

}  // namespace esd::test
