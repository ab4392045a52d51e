// The operations endpoint: plain HTTP/1.1 on the daemon's event loop for Prometheus and for health probes.
//
//   GET /metrics  200, the registry in text format 0.0.4
//   GET /healthz  200 "ok" whenever the event loop answers (liveness)
//   GET /readyz   200 "ready", or 503 with the reason from the readiness callback
//
// Meant for a local scraper: no TLS, small requests (8 KiB body limit). A connection without a request under
// way is closed after 5 s, a request must arrive whole within 10 s, and at most 128 connections are open: a
// new one closes the one idle longest, so idle or trickling clients can never lock a health probe out. Bad
// input gets a 4xx and never stops the server.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <string>

#include "ops/metrics.hpp"

namespace esd::ops {

namespace detail {
struct metrics_server_state;
}

struct health_check {
  bool ok;
  std::string detail;  // why not ready; shown in the 503 body
};

class metrics_server {
 public:
  // listen: "127.0.0.1:9187", "[::1]:9187" or ":9187" (all interfaces); port 0 picks a free port. Binds at
  // once; throws std::runtime_error naming the address on failure. `registry` must outlive the server's
  // connections; `ready` is called on the executor for each /readyz request.
  metrics_server(boost::asio::any_io_executor ex, const std::string& listen, metrics& registry,
                 std::function<health_check()> ready);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  unsigned short port() const;
  void start();  // spawns the accept loop on the executor
  void stop();   // closes the acceptor and the open connections (runs on the executor)

 private:
  // Shared with the coroutines, which may outlive this object briefly.
  std::shared_ptr<detail::metrics_server_state> state_;
};

}  // namespace esd::ops
