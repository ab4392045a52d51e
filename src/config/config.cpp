#include "config/config.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <string_view>

#include "config/config_values.hpp"

namespace esd::config {
namespace {

using namespace std::chrono_literals;

// How one key is read: returns the problem with the value, or an empty string when it is fine.
using apply_fn = std::string (*)(config&, std::string_view value);

struct key_spec {
  std::string_view section;
  std::string_view name;
  apply_fn apply;
};

std::string set_text(std::string& field, std::string_view value) {
  field = std::string(value);
  return {};
}

// Tenant ids are GUIDs or domain names ("contoso.onmicrosoft.com"); the id is pasted into the token URL's
// path, so anything else would change which URL we call.
std::string set_tenant(config& c, std::string_view v) {
  bool ok = std::all_of(v.begin(), v.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '.';
  });
  if (!ok) return "must be the directory (tenant) id: a GUID or a domain name";
  return set_text(c.entra.tenant_id, v);
}

// Ranges keep a typo from becoming an outage: a 0 that would spin, or a 10000 that would exhaust sockets.
constexpr std::array key_specs{
    key_spec{"database", "url", [](config& c, std::string_view v) { return set_text(c.database.url, v); }},
    key_spec{"database", "pool_size",
             [](config& c, std::string_view v) { return read_int(v, 1, 64, c.database.pool_size); }},
    key_spec{"database", "statement_timeout",
             [](config& c, std::string_view v) {
               return read_millis(v, 1s, 10min, c.database.statement_timeout);
             }},
    key_spec{"database", "keepalive",
             [](config& c, std::string_view v) { return read_seconds(v, 1s, 10min, c.database.keepalive); }},

    key_spec{"entra", "tenant_id", set_tenant},
    key_spec{"entra", "client_id",
             [](config& c, std::string_view v) { return set_text(c.entra.client_id, v); }},
    key_spec{"entra", "client_secret_file",
             [](config& c, std::string_view v) { return set_text(c.entra.client_secret_file, v); }},
    key_spec{"entra", "token_url",
             [](config& c, std::string_view v) { return set_text(c.entra.token_url, v); }},
    key_spec{"entra", "audience",
             [](config& c, std::string_view v) { return set_text(c.entra.audience, v); }},
    // Entra tokens live about an hour; renewing more than 30 minutes early would renew on every use.
    key_spec{
        "entra", "refresh_before",
        [](config& c, std::string_view v) { return read_seconds(v, 0s, 30min, c.entra.refresh_before); }},

    key_spec{"store", "collections_url",
             [](config& c, std::string_view v) { return set_text(c.store.collections_url, v); }},
    key_spec{"store", "purchase_url",
             [](config& c, std::string_view v) { return set_text(c.store.purchase_url, v); }},
    key_spec{"store", "ca_file", [](config& c, std::string_view v) { return set_text(c.store.ca_file, v); }},
    key_spec{"store", "product_types",
             [](config& c, std::string_view v) { return read_list(v, c.store.product_types); }},
    key_spec{"store", "max_page_size",
             [](config& c, std::string_view v) { return read_int(v, 1, 100, c.store.max_page_size); }},
    key_spec{
        "store", "connect_timeout",
        [](config& c, std::string_view v) { return read_millis(v, 1ms, 10min, c.store.connect_timeout); }},
    key_spec{"store", "request_timeout",
             [](config& c, std::string_view v) { return read_millis(v, 1ms, 1h, c.store.request_timeout); }},
    key_spec{
        "store", "max_connections_per_host",
        [](config& c, std::string_view v) { return read_int(v, 1, 1024, c.store.max_connections_per_host); }},
    key_spec{"store", "max_pages",
             [](config& c, std::string_view v) { return read_int(v, 1, 1'000'000, c.store.max_pages); }},
    // At least one ordinary page; at most what a small machine could hold for a few syncs at once.
    key_spec{"store", "max_collection_bytes",
             [](config& c, std::string_view v) {
               return read_bytes(v, 64 * 1024, 4ull * 1024 * 1024 * 1024, c.store.max_collection_bytes);
             }},
    key_spec{"store", "player_requests",
             [](config& c, std::string_view v) { return read_int(v, 1, 10000, c.store.player_requests); }},
    key_spec{"store", "player_window",
             [](config& c, std::string_view v) { return read_seconds(v, 1s, 24h, c.store.player_window); }},
    key_spec{"store", "max_requests_per_second",
             [](config& c, std::string_view v) { return read_int(v, 0, 100000, c.store.max_requests_per_second); }},
    key_spec{"store", "subscriptions",
             [](config& c, std::string_view v) {
               std::string choice;
               auto err = read_choice(v, {"on", "off", "true", "false", "yes", "no"}, choice);
               if (err.empty()) c.store.subscriptions = choice == "on" || choice == "true" || choice == "yes";
               return err;
             }},

    key_spec{"sync", "concurrency",
             [](config& c, std::string_view v) { return read_int(v, 1, 4096, c.sync.concurrency); }},
    key_spec{"sync", "poll_interval",
             [](config& c, std::string_view v) { return read_seconds(v, 1s, 24h, c.sync.poll_interval); }},
    key_spec{"sync", "drain_grace",
             [](config& c, std::string_view v) { return read_seconds(v, 0s, 24h, c.sync.drain_grace); }},
    key_spec{"sync", "watermark_overlap",
             [](config& c, std::string_view v) {
               return read_seconds(v, 0s, 24h * 30, c.sync.watermark_overlap);
             }},
    key_spec{"sync", "max_attempts",
             [](config& c, std::string_view v) { return read_int(v, 1, 100, c.sync.max_attempts); }},
    key_spec{"sync", "retry_base",
             [](config& c, std::string_view v) { return read_seconds(v, 1s, 24h, c.sync.retry_base); }},
    key_spec{"sync", "retry_cap",
             [](config& c, std::string_view v) { return read_seconds(v, 1s, 24h * 7, c.sync.retry_cap); }},
    key_spec{"sync", "max_inline_wait",
             [](config& c, std::string_view v) { return read_seconds(v, 0s, 10min, c.sync.max_inline_wait); }},
    key_spec{"sync", "shutdown_timeout",
             [](config& c, std::string_view v) { return read_seconds(v, 0s, 1h, c.sync.shutdown_timeout); }},
    key_spec{"sync", "lease",
             [](config& c, std::string_view v) { return read_seconds(v, 5s, 1h, c.sync.lease); }},
    key_spec{"sync", "backfill_rate",
             [](config& c, std::string_view v) { return read_int(v, 1, 10000, c.sync.backfill_rate); }},
    key_spec{"sync", "keep_done",
             [](config& c, std::string_view v) { return read_seconds(v, 0s, 24h * 3650, c.sync.keep_done); }},
    key_spec{"sync", "keep_failed",
             [](config& c, std::string_view v) { return read_seconds(v, 0s, 24h * 3650, c.sync.keep_failed); }},
    key_spec{"sync", "prune_interval",
             [](config& c, std::string_view v) { return read_seconds(v, 1s, 24h, c.sync.prune_interval); }},
    key_spec{"sync", "prune_batch",
             [](config& c, std::string_view v) { return read_int(v, 1, 100000, c.sync.prune_batch); }},

    key_spec{"keys", "renew_after",
             [](config& c, std::string_view v) { return read_seconds(v, 1h, 24h * 30, c.keys.renew_after); }},
    key_spec{"keys", "renew_before_expiry",
             [](config& c, std::string_view v) {
               return read_seconds(v, 0s, 24h * 30, c.keys.renew_before_expiry);
             }},
    key_spec{"keys", "keep_alive_for",
             [](config& c, std::string_view v) { return read_seconds(v, 0s, 24h * 3650, c.keys.keep_alive_for); }},
    key_spec{"keys", "sweep_interval",
             [](config& c, std::string_view v) { return read_seconds(v, 1s, 24h, c.keys.sweep_interval); }},
    key_spec{"keys", "sweep_batch",
             [](config& c, std::string_view v) { return read_int(v, 1, 10000, c.keys.sweep_batch); }},
    key_spec{"keys", "refusal_burst_players",
             [](config& c, std::string_view v) { return read_int(v, 1, 1000000, c.keys.refusal_burst_players); }},
    key_spec{"keys", "refusal_burst_window",
             [](config& c, std::string_view v) { return read_seconds(v, 1s, 24h, c.keys.refusal_burst_window); }},
    key_spec{"security", "key_encryption_key_file",
             [](config& c, std::string_view v) { return set_text(c.security.key_encryption_key_file, v); }},

    key_spec{"metrics", "listen",
             [](config& c, std::string_view v) -> std::string {
               // host:port, [v6]:port or :port; the port is required.
               auto colon = v.rfind(':');
               if (!v.empty() && (colon == std::string_view::npos || colon + 1 == v.size()))
                 return "must be ADDRESS:PORT, e.g. 127.0.0.1:9187";
               return set_text(c.metrics.listen, v);
             }},

    key_spec{"log", "level",
             [](config& c, std::string_view v) {
               return read_choice(v, {"debug", "info", "warning", "error"}, c.log.level);
             }},
};

bool known_section(std::string_view s) {
  return std::any_of(key_specs.begin(), key_specs.end(), [&](const key_spec& k) { return k.section == s; });
}

const key_spec* find_key(std::string_view section, std::string_view name) {
  for (const auto& k : key_specs)
    if (k.section == section && k.name == name) return &k;
  return nullptr;
}

// A hint for a key we do not know: a close spelling in the same section, or the section it belongs to.
std::string unknown_key_hint(std::string_view section, std::string_view name) {
  for (const auto& k : key_specs)
    if (k.name == name) return " (it belongs in [" + std::string(k.section) + "])";
  for (const auto& k : key_specs)
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
    if (std::string problem = spec->apply(c, value); !problem.empty()) {
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
