#include "config/config.hpp"

#include <algorithm>
#include <map>
#include <string_view>

#include "config/config_keys.hpp"
#include "config/config_values.hpp"

namespace esd::config {
namespace {

bool known_section(std::string_view s) {
  const auto specs = key_specs();
  return std::any_of(specs.begin(), specs.end(), [&](const key_spec& k) { return k.section == s; });
}

// A hint for a key we do not know: a close spelling in the same section, or the section it belongs to.
std::string unknown_key_hint(std::string_view section, std::string_view name) {
  for (const auto& k : key_specs())
    if (k.name == name) return " (it belongs in [" + std::string(k.section) + "])";
  for (const auto& k : key_specs())
    if (k.section == section && edit_distance(k.name, name) <= 2)
      return " (did you mean " + std::string(k.name) + "?)";
  return {};
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// A comment starts a line, or follows whitespace: "url = postgresql:///db   # libpq URI". A '#' inside a
// value ("...#fragment") stays part of it.
std::string_view strip_comment(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    if ((line[i] == '#' || line[i] == ';') && (i == 0 || is_space(line[i - 1]))) return line.substr(0, i);
  }
  return line;
}

// Values can be long paths or hostile bytes; the message shows a short printable prefix.
std::string shown_value(std::string_view v) {
  std::string out;
  for (char c : v.substr(0, 60)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return v.size() > 60 ? out + "..." : out;
}

}  // namespace

std::string config::effective_token_url() const {
  if (!entra.token_url.empty()) return entra.token_url;
  return "https://login.microsoftonline.com/" + entra.tenant_id + "/oauth2/v2.0/token";
}

config parse_config(const std::string& text, const std::string& source_name) {
  config c;
  c.source_path = source_name;
  std::map<std::string, int> seen;  // "section.key" -> line, for duplicates and cross-checks
  std::string section;
  auto at = [&](int line) { return source_name + ":" + std::to_string(line) + ": "; };

  std::string_view rest = text;
  if (rest.starts_with("\xEF\xBB\xBF")) rest.remove_prefix(3);  // a BOM some editors write
  int line_no = 0;
  while (!rest.empty()) {
    ++line_no;
    std::size_t nl = rest.find('\n');
    std::string_view line = trim(strip_comment(rest.substr(0, nl)));
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (line.empty()) continue;

    if (line.front() == '[') {
      std::string name(line.back() == ']' ? trim(line.substr(1, line.size() - 2)) : std::string_view{});
      if (name.empty())
        throw config_error("", line_no, at(line_no) + "a section header must look like [name]");
      if (!known_section(name))
        throw config_error(name, line_no,
                           at(line_no) + "unknown section [" + shown_value(name) +
                               "] (known: database, entra, store, sync, log)");
      section = std::move(name);
      continue;
    }

    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0)
      throw config_error("", line_no, at(line_no) + "expected `key = value` or `[section]`");
    std::string key(trim(line.substr(0, eq)));
    std::string_view value = trim(line.substr(eq + 1));
    if (section.empty())
      throw config_error(
          key, line_no,
          at(line_no) + shown_value(key) + " is outside any section; put it under its [section]");
    const std::string full = section + "." + key;
    const key_spec* spec = find_key(section, key);
    if (!spec)
      throw config_error(
          full, line_no,
          at(line_no) + "unknown key [" + section + "] " + shown_value(key) + unknown_key_hint(section, key));
    if (auto [it, fresh] = seen.emplace(full, line_no); !fresh)
      throw config_error(full, line_no,
                         at(line_no) + "duplicate key [" + section + "] " + key + " (first set on line " +
                             std::to_string(it->second) + ")");
    if (value.empty()) continue;  // empty means: keep the default
    if (std::string problem = set_value(*spec, c, value); !problem.empty()) {
      // The database URL may hold a password, so its value is never repeated back.
      std::string shown = full == "database.url" ? "" : " = " + shown_value(value);
      throw config_error(full, line_no, at(line_no) + "[" + section + "] " + key + shown + ": " + problem);
    }
  }

  auto require = [&](const std::string& value, const char* full, const char* display) {
    if (value.empty()) throw config_error(full, 0, source_name + ": " + display + " is required");
  };
  require(c.database.url, "database.url", "[database] url");
  require(c.entra.tenant_id, "entra.tenant_id", "[entra] tenant_id");
  require(c.entra.client_id, "entra.client_id", "[entra] client_id");

  if (c.sync.retry_cap < c.sync.retry_base) {
    int line = seen.contains("sync.retry_cap") ? seen["sync.retry_cap"] : seen["sync.retry_base"];
    throw config_error(seen.contains("sync.retry_cap") ? "sync.retry_cap" : "sync.retry_base", line,
                       at(line) + "[sync] retry_cap (" + describe_duration(c.sync.retry_cap) +
                           ") must not be shorter than retry_base (" + describe_duration(c.sync.retry_base) +
                           ")");
  }
  return c;
}

}  // namespace esd::config
