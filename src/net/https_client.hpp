// An HTTPS client for the Store and Entra: keep-alive connections pooled per host, TLS always verified
// (system trust plus an optional CA file, SNI, host-name check), a deadline on every step.
//
// One io_context, one thread: no strands, no locks. Failures that are expected outcomes (connect refused,
// timeout, TLS failure, truncated answer) come back as an error_code, not an exception.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace esd::net {

namespace asio = boost::asio;

struct https_url {
  std::string host;       // lower-case, no brackets
  std::uint16_t port = 443;
  std::string target;     // path and query, at least "/"
};

// Accepts only "https://host[:port][/path][?query]". nullopt otherwise (http, userinfo, fragments,
// empty host, bad port).
std::optional<https_url> parse_https_url(std::string_view url);

// verify_peer, TLS 1.2 minimum, the system's default trust store, plus ca_file (PEM) when not empty.
// Throws std::runtime_error naming the file if it cannot be loaded.
asio::ssl::context make_client_tls_context(const std::string& ca_file);

struct http_request {
  std::string method = "POST";
  std::string url;   // absolute https:// URL
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host, Content-Length, User-Agent
  // Sent as "Authorization: Bearer <token>". Shared, not copied: a thousand requests waiting for a
  // connection hold one copy of the service token between them.
  std::shared_ptr<const std::string> bearer_token;
  std::string body;
  // When a pooled connection fails before any byte of the response arrived, try once more on a fresh
  // connection. Set only for requests that are safe to repeat.
  bool retry_on_stale_connection = true;
};

struct http_response {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased; e.g. "retry-after", "content-type"
};

struct client_options {
  std::chrono::milliseconds connect_timeout{10'000};  // resolve + TCP connect + TLS handshake
  std::chrono::milliseconds request_timeout{30'000};  // write request + read whole response
  std::size_t max_connections_per_host = 64;          // further requests wait for a free connection
  std::size_t max_idle_per_host = 64;
  // TLS handshakes under way at once, over all hosts; more wait their turn. The wait is the client's own
  // queue, not the server's slowness: it counts against request_timeout, and connect_timeout starts with
  // the turn. A handshake holds more OpenSSL state than an established connection: a cold start with a
  // thousand requests would otherwise peak at all of them handshaking together (bench/RESULTS.md).
  std::size_t max_concurrent_handshakes = 32;
  std::chrono::seconds idle_timeout{60};              // idle pooled connections older than this are closed
  std::size_t max_response_bytes = 16 * 1024 * 1024;  // larger answers fail with message_size
  std::string user_agent = "entitlement-syncd";
};

struct client_stats {
  std::uint64_t requests = 0;
  std::uint64_t tls_handshakes = 0;   // new connections established
  std::uint64_t tls_resumed = 0;      // of which resumed an earlier TLS session (abbreviated handshake)
  std::uint64_t reused = 0;           // requests served on a pooled connection
  std::uint64_t stale_retries = 0;
  std::uint64_t peak_handshaking = 0;  // most connects + TLS handshakes under way at once
};

class https_client {
 public:
  https_client(asio::any_io_executor ex, asio::ssl::context& tls, client_options options);
  ~https_client();
  https_client(const https_client&) = delete;
  https_client& operator=(const https_client&) = delete;

  // Sends one request and reads the whole response. On failure returns the error and an empty response:
  // asio::error::timed_out for a deadline, asio::error::invalid_argument for a URL that is not https,
  // ssl errors for verification failures, beast::http::error::* for malformed or truncated answers.
  // A response with any status (4xx, 5xx) is a success at this level.
  asio::awaitable<std::pair<boost::system::error_code, http_response>> send(http_request request);

  // Closes every idle connection (used on shutdown and reload).
  void close_idle();

  const client_stats& stats() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace esd::net
