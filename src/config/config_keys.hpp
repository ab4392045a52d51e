// Every config key, declared once: its section and name, where its value lives in `config`, the range or
// check its value must pass, and whether a SIGHUP applies it to the running daemon or it needs a restart.
// The parser, `check-config` and the reload's account of what changed are all read from this table.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace esd::config {

// Where a key's value lives; the alternative is its type.
using value_ref = std::variant<std::string*, int*, millis*, seconds*, std::uint64_t*, std::vector<std::string>*, bool*>;

enum class on_reload {
  live,     // SIGHUP applies the new value to the running daemon
  restart,  // SIGHUP names the change; it takes effect at the next start
};

// A bound on a number, a duration (in milliseconds) or a size (in bytes).
struct value_range {
  std::int64_t min = 0;
  std::int64_t max = 0;
};
constexpr value_range between(std::int64_t min, std::int64_t max) { return {min, max}; }
constexpr value_range between(millis min, millis max) { return {min.count(), max.count()}; }

struct key_spec {
  std::string_view section;
  std::string_view name;
  on_reload reload;
  value_ref (*field)(config&);
  value_range range{};  // for numbers, durations and sizes
  // A further check of the text before it is read (a tenant id's characters, an address's port, a choice):
  // returns the problem in words, or an empty string.
  std::string (*check)(std::string_view value) = nullptr;
};

std::span<const key_spec> key_specs();
const key_spec* find_key(std::string_view section, std::string_view name);

// "[sync] concurrency", as messages name a key.
std::string display_name(const key_spec& k);

// Reads `value` into the key's field of c: empty on success, else the problem in words.
std::string set_value(const key_spec& k, config& c, std::string_view value);

// The key's value in c as the config file would spell it; set_value reads it back to the same value.
std::string value_text(const key_spec& k, const config& c);

struct key_change {
  const key_spec* key;
  std::string before;  // value_text of the two configs; [database] url and paths may hold secrets: callers
  std::string after;   // show them only for keys that apply live
};

// The keys whose values differ between two configs, in table order.
std::vector<key_change> changed_keys(const config& before, const config& after);

// What a reload did with a fresh config: every key whose value changed is named in one of the two lists.
struct reload_changes {
  std::vector<std::string> applied;        // live keys, with their old and new value: "sync concurrency 64 -> 16"
  std::vector<std::string> needs_restart;  // the others, by name only ("[database] url"): values may be secrets
};

// Copies the new values of the live keys from fresh into running; the other keys of running stay as
// they were started with.
reload_changes apply_live_keys(config& running, const config& fresh);

}  // namespace esd::config
