// The per-player budget and the global rate limit, on a simulated clock.
#define BOOST_TEST_MODULE request_limits
#include <boost/test/unit_test.hpp>

#include <random>

#include "sync/request_limits.hpp"

using namespace esd::sync;
using namespace std::chrono_literals;

namespace {
const steady_time t0 = steady_time{} + 1000h;
}

// Buckets are window / 32 wide (rounded up), counted from the first time the budget saw: a request is
// forgotten at the end of its bucket plus the window, at most one bucket later than exactly.
BOOST_AUTO_TEST_CASE(a_player_gets_its_budget_then_waits_for_the_oldest_to_leave_the_window) {
  player_budget budget(3, 3200ms);  // 100 ms buckets
  BOOST_TEST(budget.take("p", t0).count() == 0);
  budget.settle("p", t0 + 10ms);  // bucket 0: counts until t0 + 100 ms + 3.2 s
  BOOST_TEST(budget.take("p", t0 + 150ms).count() == 0);
  budget.settle("p", t0 + 160ms);  // bucket 1
  BOOST_TEST(budget.take("p", t0 + 250ms).count() == 0);
  budget.settle("p", t0 + 260ms);  // bucket 2
  BOOST_TEST(budget.used("p", t0 + 300ms) == 3);
  // The fourth waits until bucket 0 is gone: t0 + 3.3 s (exactly, the first would leave at t0 + 3.21 s).
  BOOST_TEST(budget.take("p", t0 + 500ms).count() == 2800);
  BOOST_TEST(budget.used("p", t0 + 500ms) == 3);  // a refused take costs nothing
  BOOST_TEST(budget.take("p", t0 + 3299ms).count() == 1);
  BOOST_TEST(budget.take("p", t0 + 3300ms).count() == 0);
  // Three again (one in flight): the next leaves with bucket 1 at t0 + 3.4 s.
  BOOST_TEST(budget.take("p", t0 + 3300ms).count() == 100);
}

BOOST_AUTO_TEST_CASE(a_request_counts_from_when_its_answer_came_back) {
  player_budget budget(2, 3200ms);
  BOOST_TEST(budget.take("p", t0).count() == 0);
  budget.settle("p", t0 + 1000ms);  // a slow answer: the Store saw it somewhere in the second between
  BOOST_TEST(budget.take("p", t0 + 1200ms).count() == 0);
  budget.settle("p", t0 + 1250ms);
  // The first counts until the end of its answer's bucket (t0 + 1.1 s) plus the window: t0 + 4.3 s.
  BOOST_TEST(budget.take("p", t0 + 3300ms).count() == 1000);
  BOOST_TEST(budget.take("p", t0 + 4300ms).count() == 0);
  budget.settle("q", t0);  // nothing taken: nothing happens
  BOOST_TEST(budget.used("q", t0 + 4300ms) == 0);
}

BOOST_AUTO_TEST_CASE(requests_in_flight_count_and_one_never_answered_leaves_a_window_after_its_take) {
  player_budget budget(2, 3200ms);
  BOOST_TEST(budget.take("p", t0).count() == 0);
  BOOST_TEST(budget.take("p", t0 + 100ms).count() == 0);
  BOOST_TEST(budget.pending_players() == 1u);
  // Both still in flight: the third waits for the first take's window to pass.
  BOOST_TEST(budget.take("p", t0 + 200ms).count() == 3000);
  budget.settle("p", t0 + 300ms);  // one answered, the other never will be
  BOOST_TEST(budget.used("p", t0 + 300ms) == 2);
  // The unanswered one leaves at t0 + 3.3 s; the answered one (bucket 3) at t0 + 3.6 s.
  BOOST_TEST(budget.take("p", t0 + 3300ms).count() == 0);
  BOOST_TEST(budget.take("p", t0 + 3300ms).count() == 300);
}

BOOST_AUTO_TEST_CASE(players_have_separate_budgets) {
  player_budget budget(2, 300s);
  BOOST_TEST(budget.take("a", t0).count() == 0);
  BOOST_TEST(budget.take("a", t0).count() == 0);
  BOOST_TEST(budget.take("a", t0).count() > 0);
  BOOST_TEST(budget.take("b", t0).count() == 0);
  BOOST_TEST(budget.used("a", t0) == 2);
  BOOST_TEST(budget.used("b", t0) == 1);
  BOOST_TEST(budget.used("c", t0) == 0);
  budget.settle("a", t0 + 1s);
  budget.settle("a", t0 + 1s);
  budget.settle("b", t0 + 1s);
  BOOST_TEST(budget.pending_players() == 0u);
  BOOST_TEST(budget.used("a", t0 + 1s) == 2);
  BOOST_TEST(budget.used("b", t0 + 1s) == 1);
  BOOST_TEST(budget.used("c", t0 + 1s) == 0);
}

BOOST_AUTO_TEST_CASE(no_window_ever_holds_more_than_the_budget) {
  // Random arrivals, each answered at once; any window of the configured length holds at most the limit.
  const int limit = 5;
  const auto window = 1000ms;
  player_budget budget(limit, window);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> gap(0, 150);
  std::vector<steady_time> granted;
  auto now = t0;
  for (int i = 0; i < 2000; ++i) {
    now += std::chrono::milliseconds(gap(rng));
    if (budget.take("p", now).count() == 0) {
      granted.push_back(now);
      budget.settle("p", now);
    }
  }
  BOOST_TEST(granted.size() > 100u);
  for (std::size_t i = 0; i + limit < granted.size(); ++i)
    BOOST_TEST_REQUIRE((granted[i + limit] - granted[i] >= window), "more than " << limit << " within one window");
}

BOOST_AUTO_TEST_CASE(waiting_the_returned_time_is_always_enough) {
  player_budget budget(4, 700ms);
  auto now = t0;
  int granted = 0;
  for (int i = 0; i < 100; ++i) {
    auto wait = budget.take("p", now);
    if (wait.count() > 0) {
      now += wait;
      BOOST_TEST_REQUIRE(budget.take("p", now).count() == 0);
    }
    budget.settle("p", now);
    ++granted;
  }
  // 100 requests at 4 per 700 ms take at least 24 full windows.
  BOOST_TEST(granted == 100);
  BOOST_TEST((now - t0 >= 24 * 700ms));
}

// The point of the sketch: a storm of 200,000 players within one window costs no memory beyond the fixed
// sketch, and a player among them still gets (nearly all of) its own budget, never more.
BOOST_AUTO_TEST_CASE(memory_does_not_grow_with_players_and_crowds_barely_cost_a_player) {
  const int limit = 180;
  player_budget budget(limit, 300s);
  const auto fixed = budget.sketch_bytes();
  BOOST_TEST(fixed == std::size_t(player_budget::buckets + 1) * player_budget::rows * player_budget::columns * 2);
  auto now = t0;
  for (int i = 0; i < 200'000; ++i) {
    const std::string user = "storm-" + std::to_string(i);
    for (int r = 0; r < 2; ++r) {  // a sync: collections and subscriptions
      BOOST_TEST_REQUIRE(budget.take(user, now).count() == 0);
      budget.settle(user, now + 5ms);
    }
    now += 1ms;  // 1,000 syncs a second: 200 s, all inside the 300 s window
  }
  BOOST_TEST(budget.sketch_bytes() == fixed);
  BOOST_TEST(budget.pending_players() == 0u);
  // One of them asks again and again: its own 2 plus what collisions add are counted, never less.
  int granted = 0;
  while (budget.take("storm-123", now).count() == 0) {
    budget.settle("storm-123", now);
    ++granted;
  }
  BOOST_TEST(granted <= limit - 2);
  BOOST_TEST(granted >= limit - 2 - 20);
  BOOST_TEST_MESSAGE("after 200,000 players, storm-123 got " << granted << " of its remaining " << limit - 2);
  // A player never seen: the same, from zero.
  int fresh = 0;
  while (budget.take("newcomer", now).count() == 0) {
    budget.settle("newcomer", now);
    ++fresh;
  }
  BOOST_TEST(fresh <= limit);
  BOOST_TEST(fresh >= limit - 20);
}

BOOST_AUTO_TEST_CASE(rate_limiter_allows_a_burst_of_one_second_then_the_rate) {
  rate_limiter limit(10);
  for (int i = 0; i < 10; ++i) BOOST_TEST(limit.take(t0).count() == 0);
  auto wait = limit.take(t0);
  BOOST_TEST(wait.count() == 100);
  BOOST_TEST(limit.take(t0 + 100ms).count() == 0);
  BOOST_TEST(limit.take(t0 + 100ms).count() > 0);
}

BOOST_AUTO_TEST_CASE(rate_limiter_holds_the_average_over_a_long_run) {
  rate_limiter limit(20);
  auto now = t0;
  int granted = 0;
  // Ask every millisecond for 10 s: 20/s plus the initial burst of 20.
  for (int ms = 0; ms < 10'000; ++ms, now += 1ms)
    if (limit.take(now).count() == 0) ++granted;
  BOOST_TEST(granted >= 20 * 10);
  BOOST_TEST(granted <= 20 * 10 + 20 + 1);
}

BOOST_AUTO_TEST_CASE(rate_limiter_zero_means_unlimited) {
  rate_limiter limit(0);
  for (int i = 0; i < 10'000; ++i) BOOST_TEST_REQUIRE(limit.take(t0).count() == 0);
}

BOOST_AUTO_TEST_CASE(rate_limiter_does_not_save_up_beyond_one_second) {
  rate_limiter limit(5);
  BOOST_TEST(limit.take(t0).count() == 0);
  // An hour idle refills to 5, not more.
  int burst = 0;
  while (limit.take(t0 + 1h).count() == 0) ++burst;
  BOOST_TEST(burst == 5);
}
