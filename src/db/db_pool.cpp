#include "db/db_pool.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "ops/log.hpp"

namespace esd::db {

void set_tcp_keepalive(int fd, std::chrono::seconds idle) {
  if (fd < 0) return;
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      (addr.ss_family != AF_INET && addr.ss_family != AF_INET6))
    return;
  const int on = 1;
  const int idle_s = static_cast<int>(std::max<long long>(1, idle.count()));
  const int interval = std::max(1, idle_s / 3);
  const int count = 3;
  const unsigned user_timeout_ms = static_cast<unsigned>(idle_s) * 1000u;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
}

namespace {

// An idle pool connection never expects data: when its socket is readable, the server has sent its goodbye
// (a restart, pg_terminate_backend, idle timeout) and closed it. Noticing that before the next statement
// spares a failed round trip, and a libpqxx 6 leak of the PGresult of a statement sent on such a connection.
bool closed_by_server(int fd) {
  if (fd < 0) return true;
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

}  // namespace

std::unique_ptr<pqxx::connection> open_connection(const std::string& url,
                                                  std::chrono::milliseconds statement_timeout,
                                                  std::chrono::seconds keepalive) {
  auto c = std::make_unique<pqxx::connection>(url);
  set_tcp_keepalive(c->sock(), keepalive);
  pqxx::nontransaction tx(*c);
  // Our transactions are short; one left idle (a bug, or a frozen process) is ended by the server
  // rather than holding locks and vacuum back.
  const auto idle_tx = std::max<long long>(statement_timeout.count() * 2, 60'000);
  tx.exec("SET application_name = 'entitlement-syncd'; SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; "
          "SET IntervalStyle = 'iso_8601'; SET statement_timeout = " +
          std::to_string(statement_timeout.count()) + "; SET idle_in_transaction_session_timeout = " +
          std::to_string(idle_tx));
  return c;
}

db_pool::db_pool(std::string url, int connections, std::chrono::milliseconds statement_timeout,
                 std::chrono::seconds keepalive)
    : url_(std::move(url)), statement_timeout_(statement_timeout), keepalive_(keepalive) {
  for (int i = 0; i < connections; ++i) threads_.emplace_back([this] { worker_loop(); });
}

db_pool::~db_pool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
}

std::size_t db_pool::busy() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + running_;
}

void db_pool::submit(std::unique_ptr<job> j) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(j));
  }
  ready_.notify_one();
}

void db_pool::worker_loop() {
  std::unique_ptr<pqxx::connection> conn;
  for (;;) {
    std::unique_ptr<job> j;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to do
      j = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    std::exception_ptr connect_error;
    if (conn && conn->is_open() && closed_by_server(conn->sock())) conn.reset();
    if (!conn || !conn->is_open()) {
      conn.reset();
      try {
        conn = open_connection(url_, statement_timeout_, keepalive_);
      } catch (...) {
        connect_error = std::current_exception();
      }
    }
    // A job that hit a dead connection leaves it for the next job to reopen.
    if (j->execute(conn.get(), connect_error)) conn.reset();
    j.reset();
    {
      std::lock_guard lock(mutex_);
      --running_;
    }
  }
}

}  // namespace esd::db
