// housekeeping: every() runs a task each interval until stop(); stop() cuts pauses short and ends every
// loop, so the event loop can finish.
#define BOOST_TEST_MODULE housekeeping
#include <boost/test/unit_test.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "sync/housekeeping.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using esd::sync::housekeeping;

BOOST_AUTO_TEST_CASE(every_runs_until_stop_and_the_loop_then_ends) {
  asio::io_context io;
  housekeeping chores(io.get_executor());
  int at_once = 0, after_interval = 0;
  chores.every(
      "test: at once", [] { return housekeeping::duration(5ms); },
      [&]() -> asio::awaitable<void> {
        if (++at_once == 4) chores.stop();
        co_return;
      },
      housekeeping::first_run::at_once);
  chores.every(
      "test: after interval", [] { return housekeeping::duration(1h); },
      [&]() -> asio::awaitable<void> {
        ++after_interval;
        co_return;
      },
      housekeeping::first_run::after_interval);
  const auto started = std::chrono::steady_clock::now();
  io.run_for(30s);
  BOOST_TEST(at_once == 4);
  BOOST_TEST(after_interval == 0);  // its first hour was cut short by stop(), and it ran no round after it
  BOOST_TEST(io.stopped());
  BOOST_TEST((std::chrono::steady_clock::now() - started < 10s));
}

BOOST_AUTO_TEST_CASE(a_pause_ends_at_stop_and_none_waits_after_it) {
  asio::io_context io;
  housekeeping chores(io.get_executor());
  int rounds = 0;
  chores.spawn("test: loop", [&]() -> asio::awaitable<void> {
    while (!chores.stopped()) {
      ++rounds;
      const housekeeping::duration long_wait = 1h;
      co_await chores.pause(long_wait);
    }
  });
  asio::steady_timer stop_soon(io, 20ms);
  stop_soon.async_wait([&](boost::system::error_code) { chores.stop(); });
  io.run_for(30s);
  BOOST_TEST(rounds == 1);
  BOOST_TEST(io.stopped());
  BOOST_TEST(chores.stopped());
}

BOOST_AUTO_TEST_CASE(a_task_that_throws_ends_only_its_own_loop) {
  asio::io_context io;
  housekeeping chores(io.get_executor());
  int healthy = 0;
  chores.every(
      "test: failing", [] { return housekeeping::duration(1ms); },
      []() -> asio::awaitable<void> {
        throw std::runtime_error("expected in this test");
        co_return;
      },
      housekeeping::first_run::at_once);
  chores.every(
      "test: healthy", [] { return housekeeping::duration(1ms); },
      [&]() -> asio::awaitable<void> {
        if (++healthy == 20) chores.stop();
        co_return;
      },
      housekeeping::first_run::at_once);
  io.run_for(30s);
  BOOST_TEST(healthy == 20);
  BOOST_TEST(io.stopped());
}
