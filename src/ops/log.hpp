// Logging for the journal: one line per record, a level on every line, key=value fields.
//
// Under systemd (JOURNAL_STREAM set) each line carries an sd-daemon "<N>" priority prefix so the journal
// records the level; elsewhere lines are "LEVEL message". Callers never pass keys, tokens or secrets.
#pragma once

#include <atomic>
#include <sstream>
#include <string>
#include <string_view>

namespace esd::log {

enum class level { debug = 0, info = 1, warning = 2, error = 3 };

bool parse_level(std::string_view text, level& out);
std::string_view to_string(level l);

void set_level(level l);
level current_level();
bool enabled(level l);

// Writes one line (thread-safe; a single write(2) per line).
void write(level l, std::string_view message);

// Formats `name=value`, quoting values with spaces or quotes, for structured fields.
std::string field(std::string_view name, std::string_view value);
std::string field(std::string_view name, long long value);

inline void debug(std::string_view m) { if (enabled(level::debug)) write(level::debug, m); }
inline void info(std::string_view m) { if (enabled(level::info)) write(level::info, m); }
inline void warning(std::string_view m) { if (enabled(level::warning)) write(level::warning, m); }
inline void error(std::string_view m) { write(level::error, m); }

}  // namespace esd::log
