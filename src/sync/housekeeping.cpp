#include "sync/housekeeping.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <set>

#include "ops/log_failure.hpp"

namespace esd::sync {

namespace asio = boost::asio;

struct housekeeping::state {
  bool stopped = false;
  std::set<asio::steady_timer*> waiting;  // the pauses under way, cut short by stop()
};

namespace {

asio::awaitable<void> pause_on(std::shared_ptr<housekeeping::state> st, housekeeping::duration d) {
  if (st->stopped) co_return;
  const auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  timer.expires_after(d);
  st->waiting.insert(&timer);
  struct leave {
    housekeeping::state& st;
    asio::steady_timer* timer;
    ~leave() { st.waiting.erase(timer); }
  } guard{*st, &timer};
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> run_every(std::shared_ptr<housekeeping::state> st, housekeeping::interval_fn interval,
                                housekeeping::task_fn task, housekeeping::first_run first) {
  bool wait_first = first == housekeeping::first_run::after_interval;
  while (!st->stopped) {
    if (wait_first) {
      const housekeeping::duration d = interval();
      co_await pause_on(st, d);
      if (st->stopped) break;
    }
    wait_first = true;
    co_await task();
  }
}

// The loop's function lives in this frame, so a coroutine lambda's captures outlive its coroutine.
asio::awaitable<void> run_once(housekeeping::task_fn loop) { co_await loop(); }

}  // namespace

housekeeping::housekeeping(asio::any_io_executor ex) : ex_(std::move(ex)), state_(std::make_shared<state>()) {}

void housekeeping::every(const std::string& what, interval_fn interval, task_fn task, first_run first) {
  asio::co_spawn(ex_, run_every(state_, std::move(interval), std::move(task), first),
                 ops::log_failure(what + " stopped"));
}

void housekeeping::spawn(const std::string& what, task_fn loop) {
  asio::co_spawn(ex_, run_once(std::move(loop)), ops::log_failure(what + " stopped"));
}

asio::awaitable<void> housekeeping::pause(housekeeping::duration d) { return pause_on(state_, d); }

void housekeeping::stop() {
  state_->stopped = true;
  for (auto* timer : state_->waiting) timer->cancel();
}

bool housekeeping::stopped() const { return state_->stopped; }

}  // namespace esd::sync
