// PostgreSQL and the Store emulator, started by scripts/lib/stack.sh: the one way the demo, the benchmark
// and these tests start them.
#include <boost/test/unit_test.hpp>

#include "harness/harness.hpp"

namespace esd::test {

namespace {

// The tests' PostgreSQL keeps nothing past the run, so it need not wait for the disk.
const std::vector<std::string> postgres_options{
    "-c", "fsync=off",          "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
    "-c", "max_connections=200"};

}  // namespace

std::string daemon_paths::daemon_bin() { return ESD_DAEMON_BIN; }
std::string daemon_paths::emulator_bin() { return ESD_EMULATOR_BIN; }

std::vector<std::string> stack_command(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"bash", std::string(ESD_SOURCE_DIR) + "/scripts/lib/stack.sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

postgres_instance::postgres_instance() : dir_("esd-pg") {
  auto r = run_process(stack_command({"pg-init", dir_.path().string()}), std::chrono::seconds(120));
  BOOST_TEST_REQUIRE(r.exit_code == 0, "initdb failed: " << r.output);
  url_ = "postgresql:///entitlements?host=" + dir_.path().string() + "&port=5432&user=postgres";
  start();
  r = run_process(stack_command({"createdb", dir_.path().string(), "entitlements"}),
                  std::chrono::seconds(60));
  BOOST_TEST_REQUIRE(r.exit_code == 0, "createdb failed: " << r.output);
}

postgres_instance::~postgres_instance() { stop(); }

void postgres_instance::start() {
  std::vector<std::string> args{"pg-start", dir_.path().string()};
  args.insert(args.end(), postgres_options.begin(), postgres_options.end());
  auto r = run_process(stack_command(args), std::chrono::seconds(90));
  BOOST_TEST_REQUIRE(r.exit_code == 0, "PostgreSQL did not start: " << r.output);
  running_ = true;
}

void postgres_instance::stop() {
  if (!running_) return;
  run_process(stack_command({"pg-stop", dir_.path().string()}), std::chrono::seconds(60));
  running_ = false;
}

emulator_instance::emulator_instance(std::vector<std::string> extra_args) : dir_("esd-emu") {
  ca_file_ = dir_.path() / "ca.pem";
  secret_file_ = dir_.path() / "client_secret";
  const auto ready = dir_.path() / "url";
  std::vector<std::string> args{"emulator", dir_.path().string()};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  // The script execs the emulator: this child is the emulator itself, to signal, stop and read.
  process_ = std::make_unique<background_process>(
      stack_command(args), dir_.path() / "emulator.log",
      std::map<std::string, std::string>{{"ESD_EMULATOR", daemon_paths::emulator_bin()},
                                         {"STACK_CLIENT_SECRET", client_secret}});
  BOOST_TEST_REQUIRE(wait_for([&] { return fs::exists(ready) || !process_->running(); },
                              std::chrono::seconds(30), std::chrono::milliseconds(20)),
                     "the emulator did not start: " << process_->log());
  BOOST_TEST_REQUIRE(fs::exists(ready), "the emulator exited: " << process_->log());
  base_url_ = read_text(ready);
  while (!base_url_.empty() && (base_url_.back() == '\n' || base_url_.back() == '\r')) base_url_.pop_back();
}

}  // namespace esd::test
