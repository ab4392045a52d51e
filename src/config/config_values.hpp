// Reading one config value (a number, a duration, a list) and checking it against its allowed range.
// Each function returns an empty string on success, else the problem in words ("must be between 1 and
// 64"), which config.cpp prefixes with the file, line and key.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace esd::config {

std::string read_int(std::string_view text, int min, int max, int& out);

// min and max bound the result; a seconds field also rejects "250ms" rather than silently rounding.
std::string read_millis(std::string_view text, std::chrono::milliseconds min, std::chrono::milliseconds max,
                        std::chrono::milliseconds& out);
std::string read_seconds(std::string_view text, std::chrono::seconds min, std::chrono::seconds max,
                         std::chrono::seconds& out);

// A size in bytes: digits and an optional unit KB, MB or GB (powers of 1024), such as "32MB".
std::string read_bytes(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t& out);

// Comma-separated, each entry trimmed; empty entries, inner whitespace and repeats are errors.
std::string read_list(std::string_view text, std::vector<std::string>& out);

// One of `allowed`.
std::string read_choice(std::string_view text, std::initializer_list<std::string_view> allowed,
                        std::string& out);

// "1s", "250ms", "10m": how a duration looks in the config file, for messages.
std::string describe_duration(std::chrono::milliseconds d);

// Levenshtein distance, for "did you mean" hints on misspelled keys.
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace esd::config
