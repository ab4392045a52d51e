// Private to src/net: requests parked in arrival order until what they wait for (a connection slot, a
// handshake turn) is handed to them, or until their deadline.
//
// Each waiter parks on its own steady_timer used as a condition variable: whoever frees the resource
// hands it (with a gift, e.g. a still-open connection) directly to the oldest waiter and cancels that
// waiter's timer, so a newcomer can never overtake a request that has been waiting. Single thread: no
// locks. The queue must outlive every wait on it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <list>
#include <utility>

namespace esd::net::detail {

// Gift: what a grant carries besides the turn itself (default-constructed when it carries nothing).
template <class Gift>
class fifo_waiters {
 public:
  struct outcome {
    bool granted = false;
    Gift gift{};                     // when granted
    boost::system::error_code ec;    // when not: timed_out, or operation_aborted (refuse_all, cancellation)
  };

  fifo_waiters() = default;
  fifo_waiters(const fifo_waiters&) = delete;
  fifo_waiters& operator=(const fifo_waiters&) = delete;

  // Parks until a grant reaches this waiter, `deadline` passes, refuse_all() or the caller cancels. Once
  // it returns granted, the caller holds the turn (and must give it back if it does not use it). A grant
  // that arrives but is never taken, because the waiting coroutine is destroyed first (with a dying
  // io_context), goes to give_back(Gift&&).
  template <class GiveBack>
  boost::asio::awaitable<outcome> wait(const boost::asio::any_io_executor& ex,
                                       std::chrono::steady_clock::time_point deadline, GiveBack give_back) {
    waiter w(ex);
    w.timer.expires_at(deadline);
    w.position = queue_.insert(queue_.end(), &w);
    w.queued = true;
    struct guard {
      fifo_waiters& queue;
      waiter& w;
      GiveBack& give_back;
      ~guard() {
        if (w.queued) queue.queue_.erase(w.position);
        if (w.granted) give_back(std::move(w.gift));
      }
    } g{*this, w, give_back};
    auto [ec] = co_await w.timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (w.granted) {
      w.granted = false;
      co_return outcome{true, std::move(w.gift), {}};
    }
    // The timer expiring normally is the deadline; a cancelled one without a grant is refuse_all() or
    // the caller's cancellation.
    co_return outcome{false, Gift{}, ec ? boost::asio::error::operation_aborted : boost::asio::error::timed_out};
  }

  // Grants the turn to the oldest waiter and wakes it. Returns where to put the gift (empty until the
  // caller fills it), or nullptr when nobody waits.
  Gift* grant_oldest() {
    if (queue_.empty()) return nullptr;
    waiter* w = queue_.front();
    queue_.pop_front();
    w->queued = false;
    w->granted = true;
    w->timer.cancel();
    return &w->gift;
  }

  // Wakes every waiter empty-handed (shutdown).
  void refuse_all() {
    for (waiter* w : std::exchange(queue_, {})) {
      w->queued = false;
      w->timer.cancel();
    }
  }

  bool empty() const { return queue_.empty(); }
  std::size_t size() const { return queue_.size(); }

 private:
  struct waiter {
    explicit waiter(const boost::asio::any_io_executor& ex) : timer(ex) {}
    boost::asio::steady_timer timer;
    bool queued = false;   // still in queue_
    bool granted = false;  // holds a turn, and maybe a gift
    Gift gift{};
    typename std::list<waiter*>::iterator position;
  };
  std::list<waiter*> queue_;  // oldest first
};

}  // namespace esd::net::detail
