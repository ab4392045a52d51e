// The daemon's configuration: a strict INI file with defaults, validated with messages that name the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace esd::config {

using seconds = std::chrono::seconds;
using millis = std::chrono::milliseconds;

inline constexpr const char* default_config_path = "/etc/entitlement-syncd/entitlement-syncd.conf";

struct database_config {
  std::string url;                    // [database] url (required): libpq URI or key=value string
  int pool_size = 4;                  // [database] pool_size, 1..64: connections for queue and writes
  millis statement_timeout{30'000};   // [database] statement_timeout, 1s..10m
  seconds keepalive{15};              // [database] keepalive, 1s..10m: the notification connection is
                                      // pinged this often, and any connection whose peer stops answering
                                      // for this long (TCP keepalive, TCP_USER_TIMEOUT) is dropped
};

struct entra_config {
  std::string tenant_id;              // [entra] tenant_id (required)
  std::string client_id;              // [entra] client_id (required)
  std::string client_secret_file = "/run/credentials/entitlement-syncd.service/client_secret";
  std::string token_url;              // [entra] token_url; default
                                      // https://login.microsoftonline.com/<tenant_id>/oauth2/v2.0/token
  std::string audience = "https://onestore.microsoft.com";  // [entra] audience
  seconds refresh_before{300};        // [entra] refresh_before: renew a cached token this long before expiry
};

struct store_config {
  std::string collections_url = "https://collections.mp.microsoft.com";  // [store] collections_url
  std::string purchase_url = "https://purchase.mp.microsoft.com";        // [store] purchase_url
  std::string ca_file;                // [store] ca_file: extra PEM trust anchors; TLS is always verified
  std::vector<std::string> product_types{"Application", "Durable", "Game", "UnmanagedConsumable"};
                                      // [store] product_types, comma-separated
  int max_page_size = 100;            // [store] max_page_size, 1..100
  millis connect_timeout{10'000};     // [store] connect_timeout
  millis request_timeout{30'000};     // [store] request_timeout: whole request, per attempt
  int max_connections_per_host = 64;  // [store] max_connections_per_host, 1..1024
  int max_pages = 1000;               // [store] max_pages: a collection longer than this is an error
  // [store] max_collection_bytes: the Store answers one page loop of a sync may hold (collections, or
  // subscriptions). The default holds more items of the documented size than a publisher's whole
  // catalogue, since the query only returns the publisher's own products.
  std::uint64_t max_collection_bytes = 32ull * 1024 * 1024;
  int player_requests = 180;          // [store] player_requests, 1..10000: Store requests per player within
  seconds player_window{300};         // [store] player_window: the Store allows about 200 per 300 s per user
  int max_requests_per_second = 0;    // [store] max_requests_per_second, 0..100000: all Store requests
                                      // together (0 = no limit beyond concurrency)
  bool subscriptions = true;          // [store] subscriptions, on/off: read the player's subscriptions
                                      // (recurrences) with the purchase key at each sync
};

struct sync_config {
  int concurrency = 64;               // [sync] concurrency, 1..4096: players synced at once
  seconds poll_interval{10};          // [sync] poll_interval: fallback when a notification is missed
  seconds drain_grace{30};            // [sync] drain_grace: `run --drain` waits for retries due this soon
  seconds watermark_overlap{300};     // [sync] watermark_overlap: modifiedAfter = watermark - overlap
  int max_attempts = 8;               // [sync] max_attempts, 1..100
  seconds retry_base{5};              // [sync] retry_base: first backoff
  seconds retry_cap{900};             // [sync] retry_cap: longest backoff
  seconds max_inline_wait{30};        // [sync] max_inline_wait: a 429 whose Retry-After is at most this
                                      // is waited out inside the sync, which goes on from the same page
  seconds shutdown_timeout{20};       // [sync] shutdown_timeout: SIGTERM waits this long for in-flight work
  seconds lease{60};                  // [sync] lease, 5s..1h: a claimed event is ours this long, extended
                                      // every lease/3 while its sync goes on; a dead daemon's events are
                                      // taken up again when it runs out
  int backfill_rate = 10;             // [sync] backfill_rate, 1..10000: players per second a backfill queues
  seconds keep_done{7 * 86400};       // [sync] keep_done: finished events are deleted after this
  seconds keep_failed{30 * 86400};    // [sync] keep_failed: failed events are kept longer
  seconds prune_interval{600};        // [sync] prune_interval, 1s..24h: how often old events are pruned
  int prune_batch = 1000;             // [sync] prune_batch, 1..100000: rows deleted per transaction
};

struct keys_config {
  seconds renew_after{14 * 86400};          // [keys] renew_after: renew a key this long after its iat
  seconds renew_before_expiry{7 * 86400};   // [keys] renew_before_expiry: or this close to its exp
  seconds keep_alive_for{90 * 86400};       // [keys] keep_alive_for: the sweep keeps keys of players who
                                            // uploaded within this alive between logins (0 = no sweep)
  seconds sweep_interval{900};              // [keys] sweep_interval: one sweep round this often
  int sweep_batch = 50;                     // [keys] sweep_batch, 1..10000: keys renewed per round at most,
                                            // spread evenly over the round
  // [keys] refusal_burst_players, 1..1000000, and refusal_burst_window: the Store refusing the keys of more
  // players than this within the window is taken as a problem on its side, not as that many dead keys.
  int refusal_burst_players = 10;
  seconds refusal_burst_window{60};
};

struct security_config {
  std::string key_encryption_key_file;      // [security] key_encryption_key_file: "KEYID BASE64" lines;
                                            // when set, stored keys are AES-256-GCM encrypted
};

struct metrics_config {
  std::string listen;                       // [metrics] listen: "127.0.0.1:9187"; empty = no endpoint
};

struct log_config {
  std::string level = "info";         // [log] level: debug, info, warning, error
};

struct config {
  std::string source_path;            // the file it was read from
  database_config database;
  entra_config entra;
  store_config store;
  sync_config sync;
  keys_config keys;
  security_config security;
  metrics_config metrics;
  log_config log;

  // The effective Entra token URL (token_url, or the default built from tenant_id).
  std::string effective_token_url() const;
};

// Thrown for anything wrong with the file. key() is "section.key" (or "section" for an unknown
// section, or empty for a syntax error), line() the 1-based line (0 when not from a line).
// what() is a full sentence naming the key, e.g.
//   "entitlement-syncd.conf:12: [sync] concurrency = 0: must be between 1 and 4096"
//   "entitlement-syncd.conf:3: unknown key [store] colections_url"
//   "[database] url is required"
class config_error : public std::runtime_error {
 public:
  config_error(std::string key, int line, const std::string& message)
      : std::runtime_error(message), key_(std::move(key)), line_(line) {}
  const std::string& key() const { return key_; }
  int line() const { return line_; }

 private:
  std::string key_;
  int line_;
};

// Parses INI text: `[section]`, `key = value`, `#` and `;` comments (whole-line, or after whitespace),
// blank lines; surrounding whitespace trimmed; values may be empty (meaning: the default).
// Unknown sections and keys, duplicate keys, bad durations/numbers/booleans, and missing required keys
// throw config_error. Durations: "250ms", "30s", "5m", "2h", "14d", or a bare number of seconds.
config parse_config(const std::string& text, const std::string& source_name);

// Reads and parses the file (config_error if unreadable).
config load_config(const std::string& path);

// The checks behind `check-config` beyond parsing: client_secret_file (and ca_file when set) exist and
// are readable and non-empty; URLs are https:// with a host (http://localhost allowed for nothing);
// throws config_error naming the key.
void validate_files_and_urls(const config& c);

// Parses a duration as above; nullopt if malformed.
std::optional<millis> parse_duration(const std::string& text);

// Reads a secret file, trimming one trailing newline. Throws config_error(key, 0, ...) if unreadable or empty.
std::string read_secret_file(const std::string& path, const std::string& key);

}  // namespace esd::config
