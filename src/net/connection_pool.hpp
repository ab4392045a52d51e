// Private to src/net: the keep-alive connections behind https_client, grouped per (host, port), with a cap
// on how many may be open per host. A request takes a connection_lease (an idle connection, or a slot for
// a new one), and either gives the connection back for reuse or lets the lease close it.
//
// Requests beyond the cap wait in a fifo_waiters queue: whoever frees a slot hands it (or the still-open
// connection) directly to the oldest waiter, so a newcomer can never overtake a request that has been
// waiting. TLS handshakes take turns under their own cap the same way.
//
// The pool is shared (shared_ptr) between https_client and the coroutines of requests in flight, so that a
// request frame outliving the client (destroyed with the io_context, or finishing after shutdown()) never
// touches freed memory. Single thread: no locks.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "net/fifo_waiters.hpp"
#include "net/https_client.hpp"
#include "net/peer_verification.hpp"
#include "net/tls_socket.hpp"

namespace esd::net::detail {

using clock = std::chrono::steady_clock;

struct connection {
  connection(const asio::any_io_executor& ex, asio::ssl::context& tls) : stream(ex, tls.native_handle()) {}
  tls_socket stream;
  clock::time_point idle_since{};
  // Closes the TCP connection without a TLS close_notify: a client may simply hang up (RFC 9110 9.6), and
  // waiting for the peer's close_notify would need a coroutine per closed connection.
  void close() noexcept;
};

struct host_pool {
  std::vector<std::unique_ptr<connection>> idle;  // back() was returned most recently
  std::size_t open = 0;                           // idle + leased + being connected: what the cap counts
  fifo_waiters<std::unique_ptr<connection>> waiters;  // granted a slot, and maybe an open connection
  tls_session_slot tls_session;                   // to resume the next connection's TLS session with
};

class connection_pool;

// A reserved slot under the per-host cap, holding either a pooled (already connected) connection or a new,
// not yet connected one. Destroying the lease closes the connection and frees the slot.
class connection_lease {
 public:
  connection_lease() = default;
  connection_lease(std::shared_ptr<connection_pool> pool, host_pool* host, std::unique_ptr<connection> conn,
                   bool reused);
  connection_lease(connection_lease&& other) noexcept;
  connection_lease& operator=(connection_lease&& other) noexcept;
  ~connection_lease();

  connection& conn() const { return *conn_; }
  bool reused() const { return reused_; }  // true: connected already, taken from the pool
  tls_session_slot& tls_session() const { return host_->tls_session; }  // the host's, to resume

  // Closes the current connection and puts a new, unconnected one in its place, keeping the slot.
  void replace_with_fresh();
  // Hands the connection back for keep-alive reuse (or to a waiting request).
  void recycle();
  // Closes the connection and frees the slot.
  void discard();

 private:
  std::shared_ptr<connection_pool> pool_;
  host_pool* host_ = nullptr;
  std::unique_ptr<connection> conn_;
  bool reused_ = false;
};

class connection_pool : public std::enable_shared_from_this<connection_pool> {
 public:
  connection_pool(asio::any_io_executor ex, asio::ssl::context& tls, client_options options);
  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;
  ~connection_pool();

  // A lease for (host, port): an idle connection if one is fresh enough, else a slot for a new connection,
  // else waits until `deadline` for one to be freed (asio::error::timed_out after that).
  // operation_aborted after shutdown() or when the caller cancels.
  asio::awaitable<std::pair<boost::system::error_code, connection_lease>> acquire(std::string host,
                                                                                  std::uint16_t port,
                                                                                  clock::time_point deadline);

  void close_idle();

  // A turn to handshake under options().max_concurrent_handshakes: false if `deadline` passed first, or
  // on shutdown. Each true must be matched by one end_handshake().
  asio::awaitable<bool> begin_handshake(clock::time_point deadline);
  void end_handshake();

  // The client is going away: close idle connections, wake waiters with operation_aborted, cancel the I/O
  // of leased connections, and never open another connection (the ssl::context may be gone soon).
  void shutdown();
  bool closed() const { return closed_; }

  const client_options& options() const { return options_; }
  client_stats stats;

 private:
  friend class connection_lease;
  std::unique_ptr<connection> new_connection();
  void release(host_pool& host, std::unique_ptr<connection> conn, bool reusable);
  void free_slot(host_pool& host);
  void prune_expired(host_pool& host);
  void track(connection* c) {
    if (c) busy_.insert(c);
  }
  void untrack(connection* c) {
    if (c) busy_.erase(c);
  }

  asio::any_io_executor executor_;
  asio::ssl::context* tls_;  // not used after shutdown()
  client_options options_;
  bool closed_ = false;
  std::map<std::pair<std::string, std::uint16_t>, host_pool> hosts_;  // entries live as long as the pool
  std::set<connection*> busy_;                                        // leased connections
  std::size_t handshaking_ = 0;
  fifo_waiters<bool> handshake_waiters_;  // granted turns count in handshaking_
};

}  // namespace esd::net::detail
