// What many tests check of a daemon: no credential in what it says, its "sync ..." lines, a clean stop.
#include <signal.h>

#include <boost/test/unit_test.hpp>

#include <sstream>

#include "harness/harness.hpp"

namespace esd::test {

std::string sql_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

void check_no_credentials(const std::string& text, const std::string& where) {
  for (const char* secret : {"eyJ", emulator_instance::client_secret}) {
    const auto at = text.find(secret);
    if (at == std::string::npos) continue;
    const auto from = text.rfind('\n', at);
    const auto line = text.substr(from == std::string::npos ? 0 : from + 1, 160);
    BOOST_ERROR(where << " holds a token, key or secret: " << line);
  }
}

std::string log_field(const std::string& line, const std::string& name) {
  const auto at = line.find(" " + name + "=");
  if (at == std::string::npos) return {};
  const auto from = at + name.size() + 2;
  return line.substr(from, line.find(' ', from) - from);
}

std::vector<sync_line> sync_lines(const std::string& log, const std::string& user) {
  std::vector<sync_line> out;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    const auto space = line.find(' ');
    if (space == std::string::npos || line.compare(space, 6, " sync ") != 0) continue;
    sync_line s;
    s.user = log_field(line, "user");
    if (!user.empty() && s.user != user) continue;
    s.outcome = log_field(line, "outcome");
    const auto first = log_field(line, "first_event"), events = log_field(line, "events");
    if (!first.empty()) s.first_event = std::stoll(first);
    if (!events.empty()) s.events = std::stoll(events);
    out.push_back(std::move(s));
  }
  return out;
}

void stop_cleanly(background_process& daemon, const std::string& name) {
  BOOST_TEST_REQUIRE(daemon.running(), name << " is no longer running: " << daemon.log());
  daemon.signal(SIGTERM);
  const auto status = daemon.wait(std::chrono::seconds(30));
  BOOST_TEST_REQUIRE(status.has_value(), name << " did not stop on SIGTERM");
  BOOST_TEST(*status == 0, name << " exited " << *status << ": " << daemon.log());
}

}  // namespace esd::test
