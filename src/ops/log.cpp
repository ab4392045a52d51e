#include "ops/log.hpp"

#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "store/error_text.hpp"

namespace esd::log {
namespace {

std::atomic<level> g_level{level::info};

bool under_journal() {
  static const bool value = std::getenv("JOURNAL_STREAM") != nullptr;
  return value;
}

// syslog priorities as sd-daemon(3) prefixes.
std::string_view journal_prefix(level l) {
  switch (l) {
    case level::debug: return "<7>";
    case level::info: return "<6>";
    case level::warning: return "<4>";
    case level::error: return "<3>";
  }
  return "<6>";
}

}  // namespace

bool parse_level(std::string_view text, level& out) {
  if (text == "debug") out = level::debug;
  else if (text == "info") out = level::info;
  else if (text == "warning" || text == "warn") out = level::warning;
  else if (text == "error") out = level::error;
  else return false;
  return true;
}

std::string_view to_string(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warning: return "warning";
    case level::error: return "error";
  }
  return "info";
}

void set_level(level l) { g_level.store(l, std::memory_order_relaxed); }
level current_level() { return g_level.load(std::memory_order_relaxed); }
bool enabled(level l) { return l >= current_level(); }

void write(level l, std::string_view message) {
  std::string line;
  line.reserve(message.size() + 16);
  if (under_journal()) {
    line += journal_prefix(l);
  }
  line += to_string(l);
  line += ' ';
  // One record, one line, and nothing a terminal or the journal would act on (ESC, BEL, NUL).
  line += store::escape_control(message);
  line += '\n';
  // One write(2) per line keeps lines whole when several threads log at once.
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::string field(std::string_view name, std::string_view raw) {
  const std::string value = store::escape_control(raw);
  std::string out(name);
  out += '=';
  bool quote = value.empty() || value.find_first_of(" \"=\t") != std::string_view::npos;
  if (!quote) {
    out += value;
    return out;
  }
  out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string field(std::string_view name, long long value) {
  return std::string(name) + '=' + std::to_string(value);
}

}  // namespace esd::log
