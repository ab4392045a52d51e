// Child processes for the integration tests: spawn, capture output, time out, signal.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness/harness.hpp"

namespace esd::test {

namespace {

int spawn(const std::vector<std::string>& argv, const fs::path& out_file,
          const std::map<std::string, std::string>& env) {
  int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  BOOST_TEST_REQUIRE(fd >= 0, "cannot open " << out_file);
  pid_t pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0, "fork failed");
  if (pid == 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::setpgid(0, 0);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(fd);
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

}  // namespace

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout, std::chrono::milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(every);
  }
  return true;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

long long unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

temp_dir::temp_dir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  char* made = ::mkdtemp(tmpl.data());
  BOOST_TEST_REQUIRE(made != nullptr, "mkdtemp failed");
  path_ = made;
  // PostgreSQL runs as its own user when the tests run as root.
  ::chmod(path_.c_str(), 0777);
}

temp_dir::~temp_dir() {
  std::error_code ec;
  if (std::getenv("ESD_KEEP_TEST_DIRS") == nullptr) fs::remove_all(path_, ec);
}

process_result run_process(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                           const std::map<std::string, std::string>& env) {
  temp_dir dir("esd-proc");
  auto out = dir.path() / "output";
  pid_t pid = spawn(argv, out, env);
  int status = 0;
  process_result result;
  if (!wait_for([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout,
                std::chrono::milliseconds(10))) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    result.exit_code = -SIGKILL;
    result.output = read_text(out) + "\n[killed after timeout]";
    return result;
  }
  result.exit_code = decode_status(status);
  result.output = read_text(out);
  return result;
}

background_process::background_process(std::vector<std::string> argv, fs::path log_file,
                                       const std::map<std::string, std::string>& env)
    : log_file_(std::move(log_file)) {
  pid_ = spawn(argv, log_file_, env);
}

background_process::~background_process() {
  if (!status_) {
    ::kill(-pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

void background_process::signal(int sig) { ::kill(pid_, sig); }

bool background_process::running() {
  if (status_) return false;
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = decode_status(st);
    return false;
  }
  return true;
}

std::optional<int> background_process::wait(std::chrono::milliseconds timeout) {
  if (!wait_for([this] { return !running(); }, timeout, std::chrono::milliseconds(10))) return std::nullopt;
  return status_;
}

std::string background_process::log() const { return read_text(log_file_); }

bool background_process::wait_for_log(const std::string& text, std::chrono::milliseconds timeout) {
  auto logged = [&] { return log().find(text) != std::string::npos; };
  wait_for([&] { return logged() || !running(); }, timeout, std::chrono::milliseconds(20));
  return logged();
}

}  // namespace esd::test
