// The queue requests wait in for a connection slot or a handshake turn: first come, first served, with
// deadlines, cancellation, shutdown, and grants that find their waiter gone.
#define BOOST_TEST_MODULE fifo_waiters
#include "net/fifo_waiters.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
using esd::net::detail::fifo_waiters;
using namespace std::chrono_literals;

namespace {

using clock = std::chrono::steady_clock;
using queue = fifo_waiters<std::string>;

struct record {
  std::vector<std::string> log;  // "name:gift" when granted, "name:timed_out" / "name:aborted" otherwise
  std::vector<std::string> given_back;
};

asio::awaitable<void> wait_as(queue& q, std::string name, clock::time_point deadline, record& r) {
  auto give_back = [&r](std::string&& gift) { r.given_back.push_back(gift); };
  auto out = co_await q.wait(co_await asio::this_coro::executor, deadline, give_back);
  if (out.granted)
    r.log.push_back(name + ":" + out.gift);
  else
    r.log.push_back(name + ":" + (out.ec == asio::error::timed_out ? "timed_out" : "aborted"));
}

void start(asio::io_context& io, queue& q, const std::string& name, clock::time_point deadline, record& r) {
  asio::co_spawn(io, wait_as(q, name, deadline, r), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(grants_go_to_the_oldest_waiter_first) {
  asio::io_context io;
  queue q;
  record r;
  const auto later = clock::now() + 1h;
  for (const char* name : {"a", "b", "c"}) start(io, q, name, later, r);
  io.poll();
  BOOST_TEST(q.size() == 3u);
  *q.grant_oldest() = "first";
  io.poll();
  start(io, q, "d", later, r);  // a newcomer queues behind b and c
  io.poll();
  *q.grant_oldest() = "second";
  *q.grant_oldest() = "third";
  *q.grant_oldest() = "fourth";
  BOOST_TEST(q.grant_oldest() == nullptr);  // nobody left
  io.poll();
  BOOST_TEST(r.log == (std::vector<std::string>{"a:first", "b:second", "c:third", "d:fourth"}),
             boost::test_tools::per_element());
  BOOST_TEST(q.empty());
}

BOOST_AUTO_TEST_CASE(a_grant_may_carry_nothing) {
  asio::io_context io;
  queue q;
  record r;
  start(io, q, "a", clock::now() + 1h, r);
  io.poll();
  BOOST_TEST(q.grant_oldest() != nullptr);  // the turn alone
  io.poll();
  BOOST_TEST(r.log == (std::vector<std::string>{"a:"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_waiter_past_its_deadline_leaves_the_queue) {
  asio::io_context io;
  queue q;
  record r;
  start(io, q, "hurried", clock::now() + 20ms, r);
  start(io, q, "patient", clock::now() + 1h, r);
  io.run_for(200ms);
  BOOST_TEST(r.log == (std::vector<std::string>{"hurried:timed_out"}), boost::test_tools::per_element());
  BOOST_TEST(q.size() == 1u);
  *q.grant_oldest() = "slot";  // goes to the one still waiting, not to the one that left
  io.poll();
  BOOST_TEST(r.log.back() == "patient:slot");
  BOOST_TEST(r.given_back.empty());
}

BOOST_AUTO_TEST_CASE(a_cancelled_waiter_leaves_the_queue) {
  asio::io_context io;
  queue q;
  record r;
  asio::cancellation_signal cancel;
  asio::co_spawn(io, wait_as(q, "cancelled", clock::now() + 1h, r),
                 asio::bind_cancellation_slot(cancel.slot(), asio::detached));
  start(io, q, "kept", clock::now() + 1h, r);
  io.poll();
  cancel.emit(asio::cancellation_type::terminal);
  io.poll();
  BOOST_TEST(r.log == (std::vector<std::string>{"cancelled:aborted"}), boost::test_tools::per_element());
  BOOST_TEST(q.size() == 1u);
  *q.grant_oldest() = "slot";
  io.poll();
  BOOST_TEST(r.log.back() == "kept:slot");
}

BOOST_AUTO_TEST_CASE(refuse_all_wakes_everyone_empty_handed) {
  asio::io_context io;
  queue q;
  record r;
  for (const char* name : {"a", "b"}) start(io, q, name, clock::now() + 1h, r);
  io.poll();
  q.refuse_all();
  BOOST_TEST(q.empty());
  io.poll();
  BOOST_TEST(r.log == (std::vector<std::string>{"a:aborted", "b:aborted"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_grant_whose_waiter_is_destroyed_is_given_back) {
  queue q;
  record r;
  {
    asio::io_context io;
    start(io, q, "doomed", clock::now() + 1h, r);
    start(io, q, "queued", clock::now() + 1h, r);
    io.poll();
    *q.grant_oldest() = "connection";  // granted, but the waiter never runs again
  }  // the io_context dies with both coroutines
  BOOST_TEST(r.log.empty());
  BOOST_TEST(r.given_back == (std::vector<std::string>{"connection"}), boost::test_tools::per_element());
  BOOST_TEST(q.empty());  // the one still queued left the queue too
}
