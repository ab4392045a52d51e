#include "config/config_keys.hpp"

#include <algorithm>
#include <array>

#include "config/config_values.hpp"

namespace esd::config {
namespace {

using namespace std::chrono_literals;
constexpr auto live = on_reload::live;
constexpr auto restart = on_reload::restart;

// Tenant ids are GUIDs or domain names ("contoso.onmicrosoft.com"); the id is pasted into the token URL's
// path, so anything else would change which URL we call.
std::string check_tenant(std::string_view v) {
  bool ok = std::all_of(v.begin(), v.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '.';
  });
  return ok ? std::string() : "must be the directory (tenant) id: a GUID or a domain name";
}

// host:port, [v6]:port or :port; the port is required.
std::string check_listen(std::string_view v) {
  auto colon = v.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == v.size()) return "must be ADDRESS:PORT, e.g. 127.0.0.1:9187";
  return {};
}

std::string check_level(std::string_view v) {
  std::string ignored;
  return read_choice(v, {"debug", "info", "warning", "error"}, ignored);
}

#define ESD_FIELD(path) [](config& c) -> value_ref { return &c.path; }

// Ranges keep a typo from becoming an outage: a 0 that would spin, or a 10000 that would exhaust sockets.
constexpr std::array specs{
    key_spec{"database", "url", restart, ESD_FIELD(database.url)},
    key_spec{"database", "pool_size", restart, ESD_FIELD(database.pool_size), between(1, 64)},
    key_spec{"database", "statement_timeout", restart, ESD_FIELD(database.statement_timeout), between(1s, 10min)},
    key_spec{"database", "keepalive", restart, ESD_FIELD(database.keepalive), between(1s, 10min)},

    key_spec{"entra", "tenant_id", restart, ESD_FIELD(entra.tenant_id), {}, check_tenant},
    key_spec{"entra", "client_id", restart, ESD_FIELD(entra.client_id)},
    key_spec{"entra", "client_secret_file", restart, ESD_FIELD(entra.client_secret_file)},
    key_spec{"entra", "token_url", restart, ESD_FIELD(entra.token_url)},
    key_spec{"entra", "audience", restart, ESD_FIELD(entra.audience)},
    // Entra tokens live about an hour; renewing more than 30 minutes early would renew on every use.
    key_spec{"entra", "refresh_before", restart, ESD_FIELD(entra.refresh_before), between(0s, 30min)},

    key_spec{"store", "collections_url", restart, ESD_FIELD(store.collections_url)},
    key_spec{"store", "purchase_url", restart, ESD_FIELD(store.purchase_url)},
    key_spec{"store", "ca_file", restart, ESD_FIELD(store.ca_file)},
    key_spec{"store", "product_types", restart, ESD_FIELD(store.product_types)},
    key_spec{"store", "max_page_size", restart, ESD_FIELD(store.max_page_size), between(1, 100)},
    key_spec{"store", "connect_timeout", restart, ESD_FIELD(store.connect_timeout), between(1ms, 10min)},
    key_spec{"store", "request_timeout", restart, ESD_FIELD(store.request_timeout), between(1ms, 1h)},
    key_spec{"store", "max_connections_per_host", restart, ESD_FIELD(store.max_connections_per_host),
             between(1, 1024)},
    key_spec{"store", "max_pages", restart, ESD_FIELD(store.max_pages), between(1, 1'000'000)},
    // At least one ordinary page; at most what a small machine could hold for a few syncs at once.
    key_spec{"store", "max_collection_bytes", restart, ESD_FIELD(store.max_collection_bytes),
             between(64 * 1024, 4ll * 1024 * 1024 * 1024)},
    key_spec{"store", "player_requests", restart, ESD_FIELD(store.player_requests), between(1, 10000)},
    key_spec{"store", "player_window", restart, ESD_FIELD(store.player_window), between(1s, 24h)},
    key_spec{"store", "max_requests_per_second", restart, ESD_FIELD(store.max_requests_per_second),
             between(0, 100000)},
    key_spec{"store", "subscriptions", restart, ESD_FIELD(store.subscriptions)},

    key_spec{"sync", "concurrency", live, ESD_FIELD(sync.concurrency), between(1, 4096)},
    key_spec{"sync", "poll_interval", live, ESD_FIELD(sync.poll_interval), between(1s, 24h)},
    // Read once, when `run --drain` starts.
    key_spec{"sync", "drain_grace", restart, ESD_FIELD(sync.drain_grace), between(0s, 24h)},
    key_spec{"sync", "watermark_overlap", restart, ESD_FIELD(sync.watermark_overlap), between(0s, 24h * 30)},
    key_spec{"sync", "max_attempts", live, ESD_FIELD(sync.max_attempts), between(1, 100)},
    key_spec{"sync", "retry_base", live, ESD_FIELD(sync.retry_base), between(1s, 24h)},
    key_spec{"sync", "retry_cap", live, ESD_FIELD(sync.retry_cap), between(1s, 24h * 7)},
    key_spec{"sync", "max_inline_wait", restart, ESD_FIELD(sync.max_inline_wait), between(0s, 10min)},
    key_spec{"sync", "shutdown_timeout", live, ESD_FIELD(sync.shutdown_timeout), between(0s, 1h)},
    key_spec{"sync", "lease", live, ESD_FIELD(sync.lease), between(5s, 1h)},
    key_spec{"sync", "backfill_rate", live, ESD_FIELD(sync.backfill_rate), between(1, 10000)},
    key_spec{"sync", "keep_done", live, ESD_FIELD(sync.keep_done), between(0s, 24h * 3650)},
    key_spec{"sync", "keep_failed", live, ESD_FIELD(sync.keep_failed), between(0s, 24h * 3650)},
    key_spec{"sync", "prune_interval", live, ESD_FIELD(sync.prune_interval), between(1s, 24h)},
    key_spec{"sync", "prune_batch", live, ESD_FIELD(sync.prune_batch), between(1, 100000)},

    key_spec{"keys", "renew_after", restart, ESD_FIELD(keys.renew_after), between(1h, 24h * 30)},
    key_spec{"keys", "renew_before_expiry", restart, ESD_FIELD(keys.renew_before_expiry), between(0s, 24h * 30)},
    key_spec{"keys", "keep_alive_for", restart, ESD_FIELD(keys.keep_alive_for), between(0s, 24h * 3650)},
    key_spec{"keys", "sweep_interval", restart, ESD_FIELD(keys.sweep_interval), between(1s, 24h)},
    key_spec{"keys", "sweep_batch", restart, ESD_FIELD(keys.sweep_batch), between(1, 10000)},
    key_spec{"keys", "refusal_burst_players", restart, ESD_FIELD(keys.refusal_burst_players),
             between(1, 1000000)},
    key_spec{"keys", "refusal_burst_window", restart, ESD_FIELD(keys.refusal_burst_window), between(1s, 24h)},

    key_spec{"security", "key_encryption_key_file", restart, ESD_FIELD(security.key_encryption_key_file)},

    key_spec{"metrics", "listen", restart, ESD_FIELD(metrics.listen), {}, check_listen},

    key_spec{"log", "level", live, ESD_FIELD(log.level), {}, check_level},
};

#undef ESD_FIELD

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};

seconds whole_seconds(std::int64_t ms) { return std::chrono::duration_cast<seconds>(millis(ms)); }

}  // namespace

std::span<const key_spec> key_specs() { return specs; }

const key_spec* find_key(std::string_view section, std::string_view name) {
  for (const auto& k : specs)
    if (k.section == section && k.name == name) return &k;
  return nullptr;
}

std::string display_name(const key_spec& k) { return "[" + std::string(k.section) + "] " + std::string(k.name); }

std::string set_value(const key_spec& k, config& c, std::string_view value) {
  if (k.check)
    if (std::string problem = k.check(value); !problem.empty()) return problem;
  const auto [min, max] = k.range;
  return std::visit(
      overloaded{
          [&](std::string* s) { *s = std::string(value); return std::string(); },
          [&](int* n) { return read_int(value, static_cast<int>(min), static_cast<int>(max), *n); },
          [&](millis* d) { return read_millis(value, millis(min), millis(max), *d); },
          [&](seconds* d) { return read_seconds(value, whole_seconds(min), whole_seconds(max), *d); },
          [&](std::uint64_t* n) {
            return read_bytes(value, static_cast<std::uint64_t>(min), static_cast<std::uint64_t>(max), *n);
          },
          [&](std::vector<std::string>* list) { return read_list(value, *list); },
          [&](bool* flag) {
            std::string choice;
            auto problem = read_choice(value, {"on", "off", "true", "false", "yes", "no"}, choice);
            if (problem.empty()) *flag = choice == "on" || choice == "true" || choice == "yes";
            return problem;
          },
      },
      k.field(c));
}

std::string value_text(const key_spec& k, const config& c) {
  // The field is only read; the table's accessors take a mutable config so that one accessor serves both.
  return std::visit(overloaded{
                        [](std::string* s) { return *s; },
                        [](int* n) { return std::to_string(*n); },
                        [](millis* d) { return describe_duration(*d); },
                        [](seconds* d) { return describe_duration(*d); },
                        [](std::uint64_t* n) { return std::to_string(*n); },
                        [](std::vector<std::string>* list) {
                          std::string out;
                          for (const auto& item : *list) out += (out.empty() ? "" : ", ") + item;
                          return out;
                        },
                        [](bool* flag) { return std::string(*flag ? "on" : "off"); },
                    },
                    k.field(const_cast<config&>(c)));
}

std::vector<key_change> changed_keys(const config& before, const config& after) {
  std::vector<key_change> out;
  for (const auto& k : specs) {
    auto a = value_text(k, before);
    auto b = value_text(k, after);
    if (a != b) out.push_back({&k, std::move(a), std::move(b)});
  }
  return out;
}

reload_changes apply_live_keys(config& running, const config& fresh) {
  reload_changes out;
  for (auto& change : changed_keys(running, fresh)) {
    const key_spec& k = *change.key;
    // value_text reads back to the same value, so a live key's new text always applies.
    if (k.reload == on_reload::live && set_value(k, running, change.after).empty())
      out.applied.push_back(std::string(k.section) + " " + std::string(k.name) + " " + change.before + " -> " +
                            change.after);
    else
      out.needs_restart.push_back(display_name(k));
  }
  return out;
}

}  // namespace esd::config
