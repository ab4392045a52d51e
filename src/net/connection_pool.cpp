// See connection_pool.hpp. The invariant kept here: for every host, `open` counts the idle connections plus
// every slot held by a lease or granted to a waiter, and waiters exist only while no connection is idle.
#include "net/connection_pool.hpp"

#include <algorithm>
#include <utility>
#include <boost/asio/error.hpp>

namespace esd::net::detail {

void connection::close() noexcept { stream.close(); }

// ---- connection_lease ----

connection_lease::connection_lease(std::shared_ptr<connection_pool> pool, host_pool* host,
                                   std::unique_ptr<connection> conn, bool reused)
    : pool_(std::move(pool)), host_(host), conn_(std::move(conn)), reused_(reused) {
  pool_->track(conn_.get());
}

connection_lease::connection_lease(connection_lease&& other) noexcept
    : pool_(std::move(other.pool_)),
      host_(other.host_),
      conn_(std::move(other.conn_)),
      reused_(other.reused_) {}

connection_lease& connection_lease::operator=(connection_lease&& other) noexcept {
  if (this != &other) {
    discard();
    pool_ = std::move(other.pool_);
    host_ = other.host_;
    conn_ = std::move(other.conn_);
    reused_ = other.reused_;
  }
  return *this;
}

connection_lease::~connection_lease() { discard(); }

void connection_lease::replace_with_fresh() {
  pool_->untrack(conn_.get());
  if (conn_) conn_->close();
  conn_ = pool_->new_connection();
  pool_->track(conn_.get());
  reused_ = false;
}

void connection_lease::recycle() {
  if (!pool_) return;
  auto pool = std::move(pool_);
  pool->release(*host_, std::move(conn_), true);
}

void connection_lease::discard() {
  if (!pool_) return;
  auto pool = std::move(pool_);
  pool->release(*host_, std::move(conn_), false);
}

// ---- connection_pool ----

connection_pool::connection_pool(asio::any_io_executor ex, asio::ssl::context& tls, client_options options)
    : executor_(std::move(ex)), tls_(&tls), options_(std::move(options)) {
  options_.max_connections_per_host = std::max<std::size_t>(options_.max_connections_per_host, 1);
}

connection_pool::~connection_pool() = default;

std::unique_ptr<connection> connection_pool::new_connection() {
  // Callers check closed() first: after shutdown() the ssl::context may already be destroyed.
  return std::make_unique<connection>(executor_, *tls_);
}

asio::awaitable<std::pair<boost::system::error_code, connection_lease>> connection_pool::acquire(
    std::string host, std::uint16_t port, clock::time_point deadline) {
  auto self = shared_from_this();
  if (closed_)
    co_return std::pair{asio::error::make_error_code(asio::error::operation_aborted), connection_lease{}};

  host_pool& pool = hosts_[{host, port}];
  prune_expired(pool);
  if (!pool.idle.empty()) {
    auto conn = std::move(pool.idle.back());
    pool.idle.pop_back();
    co_return std::pair{boost::system::error_code{}, connection_lease(self, &pool, std::move(conn), true)};
  }
  if (pool.open < options_.max_connections_per_host) {
    ++pool.open;
    co_return std::pair{boost::system::error_code{}, connection_lease(self, &pool, new_connection(), false)};
  }

  // At the cap: wait for release() or free_slot() to grant us a slot. A granted slot we do not take (after
  // shutdown(), or because this frame is destroyed by a dying io_context) is given back.
  auto give_back = [this, &pool](std::unique_ptr<connection> conn) { release(pool, std::move(conn), false); };
  auto waited = co_await pool.waiters.wait(executor_, deadline, give_back);
  if (waited.granted && !closed_) {
    const bool reused = waited.gift != nullptr;
    auto conn = reused ? std::move(waited.gift) : new_connection();
    co_return std::pair{boost::system::error_code{}, connection_lease(self, &pool, std::move(conn), reused)};
  }
  if (waited.granted) give_back(std::move(waited.gift));
  co_return std::pair{closed_ ? asio::error::make_error_code(asio::error::operation_aborted) : waited.ec,
                      connection_lease{}};
}

void connection_pool::release(host_pool& host, std::unique_ptr<connection> conn, bool reusable) {
  untrack(conn.get());
  if (conn && reusable && !closed_) {
    conn->idle_since = clock::now();
    if (auto* gift = host.waiters.grant_oldest()) {
      *gift = std::move(conn);
      return;
    }
    if (host.idle.size() < options_.max_idle_per_host) {
      host.idle.push_back(std::move(conn));
      return;
    }
  }
  if (conn) conn->close();
  free_slot(host);
}

void connection_pool::free_slot(host_pool& host) {
  if (!closed_ && host.waiters.grant_oldest()) return;  // the slot moves to the waiter; `open` is unchanged
  --host.open;
}

void connection_pool::prune_expired(host_pool& host) {
  auto now = clock::now();
  auto expired = [&](const std::unique_ptr<connection>& c) {
    return now - c->idle_since >= options_.idle_timeout;
  };
  // Partition first, then close: free_slot() may not touch `idle` while we iterate it.
  auto first_expired =
      std::stable_partition(host.idle.begin(), host.idle.end(), [&](const auto& c) { return !expired(c); });
  std::vector<std::unique_ptr<connection>> doomed(std::make_move_iterator(first_expired),
                                                  std::make_move_iterator(host.idle.end()));
  host.idle.erase(first_expired, host.idle.end());
  for (auto& c : doomed) {
    c->close();
    free_slot(host);
  }
}

void connection_pool::close_idle() {
  for (auto& [key, host] : hosts_) {
    auto idle = std::move(host.idle);
    host.idle.clear();
    for (auto& c : idle) {
      c->close();
      free_slot(host);
    }
  }
}

asio::awaitable<bool> connection_pool::begin_handshake(clock::time_point deadline) {
  auto self = shared_from_this();
  if (closed_) co_return false;
  if (handshaking_ < std::max<std::size_t>(options_.max_concurrent_handshakes, 1)) {
    ++handshaking_;
    stats.peak_handshaking = std::max<std::uint64_t>(stats.peak_handshaking, handshaking_);
    co_return true;
  }
  // A turn granted but not taken (after shutdown(), or by a destroyed frame) moves on.
  auto give_back = [this](bool) { end_handshake(); };
  auto waited = co_await handshake_waiters_.wait(executor_, deadline, give_back);
  if (waited.granted && closed_) give_back(true);
  co_return waited.granted && !closed_;
}

void connection_pool::end_handshake() {
  if (!closed_ && handshake_waiters_.grant_oldest()) return;  // the turn moves on; handshaking_ is unchanged
  --handshaking_;
}

void connection_pool::shutdown() {
  if (closed_) return;
  close_idle();
  closed_ = true;
  handshake_waiters_.refuse_all();
  for (auto& [key, host] : hosts_) host.waiters.refuse_all();
  for (connection* c : busy_) {
    c->stream.cancel();
  }
}

}  // namespace esd::net::detail
