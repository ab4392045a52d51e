// The daemon's periodic loops (pruning, backfill feeding, gauges, watchdog pings, lease extension, the
// key sweep) run through one mechanism: every(interval, task), or a loop of its own that paces itself
// with pause(). stop() ends them all at once: pending pauses return early and no loop starts another round.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace esd::sync {

class housekeeping {
 public:
  using duration = std::chrono::steady_clock::duration;
  using interval_fn = std::function<duration()>;  // read again before each round
  using task_fn = std::function<boost::asio::awaitable<void>()>;
  enum class first_run { at_once, after_interval };

  explicit housekeeping(boost::asio::any_io_executor ex);

  // Runs task every interval() until stop(); a task that throws ends its loop with `what` in the log.
  void every(const std::string& what, interval_fn interval, task_fn task, first_run first);

  // Runs a loop that paces itself with pause() and ends when stopped() holds.
  void spawn(const std::string& what, task_fn loop);

  // Waits d, or less if stop() comes first (at once if it already came).
  boost::asio::awaitable<void> pause(duration d);

  void stop();
  bool stopped() const;

  struct state;

 private:
  boost::asio::any_io_executor ex_;
  // Shared with the loops: a loop abandoned at shutdown is destroyed with the io_context, after this.
  std::shared_ptr<state> state_;
};

}  // namespace esd::sync
