#include "db/db_pool.hpp"

#include "ops/log.hpp"

namespace esd::db {

std::unique_ptr<pqxx::connection> open_connection(const std::string& url,
                                                  std::chrono::milliseconds statement_timeout) {
  auto c = std::make_unique<pqxx::connection>(url);
  pqxx::nontransaction tx(*c);
  tx.exec("SET application_name = 'entitlement-syncd'; SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; "
          "SET IntervalStyle = 'iso_8601'; SET statement_timeout = " +
          std::to_string(statement_timeout.count()));
  return c;
}

db_pool::db_pool(std::string url, int connections, std::chrono::milliseconds statement_timeout)
    : url_(std::move(url)), statement_timeout_(statement_timeout) {
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
    if (!conn || !conn->is_open()) {
      conn.reset();
      try {
        conn = open_connection(url_, statement_timeout_);
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
