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

BOOST_AUTO_TEST_CASE(a_player_gets_its_budget_then_waits_for_the_oldest_to_leave_the_window) {
  player_budget budget(3, 2000ms);
  BOOST_TEST(budget.take("p", t0).count() == 0);
  BOOST_TEST(budget.take("p", t0 + 100ms).count() == 0);
  BOOST_TEST(budget.take("p", t0 + 200ms).count() == 0);
  BOOST_TEST(budget.used("p", t0 + 200ms) == 3);
  // The fourth must wait until the first (at t0) leaves the window at t0 + 2 s.
  BOOST_TEST(budget.take("p", t0 + 500ms).count() == 1500);
  BOOST_TEST(budget.used("p", t0 + 500ms) == 3);  // a refused take costs nothing
  BOOST_TEST(budget.take("p", t0 + 1999ms).count() == 1);
  BOOST_TEST(budget.take("p", t0 + 2000ms).count() == 0);
  // Now the one at t0 + 100 ms is the oldest.
  BOOST_TEST(budget.take("p", t0 + 2000ms).count() == 100);
}

BOOST_AUTO_TEST_CASE(a_slot_counts_from_when_its_answer_came_back) {
  player_budget budget(2, 1000ms);
  BOOST_TEST(budget.take("p", t0).count() == 0);
  budget.settle("p", t0 + 300ms);  // the answer took 300 ms: the Store saw it somewhere in between
  BOOST_TEST(budget.take("p", t0 + 400ms).count() == 0);
  budget.settle("p", t0 + 450ms);
  // The first slot now ends at t0 + 1300 ms, not t0 + 1000 ms.
  BOOST_TEST(budget.take("p", t0 + 1000ms).count() == 300);
  BOOST_TEST(budget.take("p", t0 + 1300ms).count() == 0);
  budget.settle("q", t0);  // nothing taken: nothing happens
  BOOST_TEST(budget.used("q", t0) == 0);
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
}

BOOST_AUTO_TEST_CASE(no_window_ever_holds_more_than_the_budget) {
  // Random arrivals; every granted request is logged; any window of the configured length holds at most
  // the limit.
  const int limit = 5;
  const auto window = 1000ms;
  player_budget budget(limit, window);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> gap(0, 150);
  std::vector<steady_time> granted;
  auto now = t0;
  for (int i = 0; i < 2000; ++i) {
    now += std::chrono::milliseconds(gap(rng));
    if (budget.take("p", now).count() == 0) granted.push_back(now);
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
    ++granted;
  }
  // 100 requests at 4 per 700 ms take at least 24 full windows.
  BOOST_TEST(granted == 100);
  BOOST_TEST((now - t0 >= 24 * 700ms));
}

BOOST_AUTO_TEST_CASE(idle_players_are_forgotten) {
  player_budget budget(10, 1000ms);
  for (int i = 0; i < 500; ++i) budget.take("player-" + std::to_string(i), t0);
  BOOST_TEST(budget.tracked_players() == 500u);
  // A window later, the next take sweeps every idle player.
  budget.take("fresh", t0 + 1001ms);
  BOOST_TEST(budget.tracked_players() == 1u);
  BOOST_TEST(budget.used("player-0", t0 + 1001ms) == 0);
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
