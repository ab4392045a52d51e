// PostgreSQL access from the event loop: libpqxx calls block, so they run on a few worker threads, each
// owning one connection, and their results are posted back to the awaiting coroutine's executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pqxx/pqxx>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace esd::db {

namespace asio = boost::asio;

// Opens a connection with our session settings (application_name, statement_timeout, UTC, ISO dates,
// no transaction left idle) and TCP keepalive: a peer that stops answering for `keepalive` (a half-open
// connection after a network failure or a server that vanished) breaks the connection instead of
// hanging it.
std::unique_ptr<pqxx::connection> open_connection(const std::string& url,
                                                  std::chrono::milliseconds statement_timeout,
                                                  std::chrono::seconds keepalive = std::chrono::seconds(15));

// SO_KEEPALIVE with probes after idle, and TCP_USER_TIMEOUT of idle for unacknowledged data. Does nothing
// on a Unix-domain socket.
void set_tcp_keepalive(int fd, std::chrono::seconds idle);

class db_pool {
 public:
  db_pool(std::string url, int connections, std::chrono::milliseconds statement_timeout,
          std::chrono::seconds keepalive = std::chrono::seconds(15));
  ~db_pool();  // finishes queued jobs, then joins the threads
  db_pool(const db_pool&) = delete;
  db_pool& operator=(const db_pool&) = delete;

  // Runs f(connection&) on a worker thread and resumes the caller with its result (or its exception)
  // on the caller's executor. A broken connection is reopened for the next job.
  template <class F>
  auto run(F f) -> asio::awaitable<std::invoke_result_t<F&, pqxx::connection&>> {
    using result_t = std::invoke_result_t<F&, pqxx::connection&>;
    static_assert(!std::is_void_v<result_t>, "return a value (e.g. bool) from database jobs");
    auto ex = co_await asio::this_coro::executor;
    // The initiation is a named local (GCC 12): a temporary would be destroyed twice, and with it
    // whatever the job captured by value.
    auto initiate = [this, ex, &f](auto handler) {
      submit(std::make_unique<job_of<F, decltype(handler)>>(std::move(f), std::move(handler), ex));
    };
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, result_t)>(
        initiate, asio::use_awaitable);
  }

  // Jobs waiting for a worker plus jobs running.
  std::size_t busy() const;

 private:
  struct job {
    virtual ~job() = default;
    // Returns true when the connection turned out to be broken and must be reopened.
    virtual bool execute(pqxx::connection* c, std::exception_ptr connect_error) = 0;
  };

  template <class F, class Handler>
  struct job_of final : job {
    using result_t = std::invoke_result_t<F&, pqxx::connection&>;
    job_of(F f, Handler h, asio::any_io_executor ex)
        : fn(std::move(f)), handler(std::move(h)), work(asio::make_work_guard(ex)) {}
    bool execute(pqxx::connection* c, std::exception_ptr connect_error) override {
      std::exception_ptr error = connect_error;
      result_t result{};
      bool broken = false;
      if (!error) {
        try {
          result = fn(*c);
        } catch (const pqxx::broken_connection&) {
          error = std::current_exception();
          broken = true;
        } catch (...) {
          error = std::current_exception();
        }
      }
      auto ex = work.get_executor();
      asio::post(ex, [h = std::move(handler), error, r = std::move(result)]() mutable {
        std::move(h)(error, std::move(r));
      });
      work.reset();
      return broken;
    }
    F fn;
    Handler handler;
    asio::executor_work_guard<asio::any_io_executor> work;
  };

  void submit(std::unique_ptr<job> j);
  void worker_loop();

  std::string url_;
  std::chrono::milliseconds statement_timeout_;
  std::chrono::seconds keepalive_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::unique_ptr<job>> queue_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace esd::db
