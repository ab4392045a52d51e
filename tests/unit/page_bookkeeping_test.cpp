// The bookkeeping of a paged Store read: the byte cap across pages and continuation cycles of any length.
#define BOOST_TEST_MODULE page_bookkeeping
#include <boost/test/unit_test.hpp>

#include "sync/page_bookkeeping.hpp"

using esd::sync::failure_kind;
using esd::sync::page_bookkeeping;

BOOST_AUTO_TEST_CASE(answers_count_across_pages_up_to_the_cap) {
  page_bookkeeping pages(10 * 1024 * 1024, "the collection");
  for (int i = 0; i < 3; ++i) BOOST_TEST(!pages.count_answer(3 * 1024 * 1024));
  BOOST_TEST(!pages.count_answer(1024 * 1024));  // exactly the cap is still fine
  const auto over = pages.count_answer(1);
  BOOST_TEST_REQUIRE(over.has_value());
  BOOST_TEST((over->kind == failure_kind::permanent));  // the same answers would come again
  BOOST_TEST(over->code == "too_large");
  BOOST_TEST(!over->dead_key.has_value());
  BOOST_TEST(over->reason.find("the collection: ") == 0u, over->reason);
  BOOST_TEST(over->reason.find("more than 10 MB after 5 pages") != std::string::npos, over->reason);
  BOOST_TEST(over->reason.find("raise [store] max_collection_bytes") != std::string::npos, over->reason);
}

BOOST_AUTO_TEST_CASE(one_answer_over_the_cap_ends_the_read_at_once) {
  page_bookkeeping pages(64 * 1024, "subscriptions");
  const auto over = pages.count_answer(64 * 1024 + 1);
  BOOST_TEST_REQUIRE(over.has_value());
  BOOST_TEST(over->reason.find("subscriptions: ") == 0u, over->reason);
  BOOST_TEST(over->reason.find("65536 bytes after 1 page ") != std::string::npos, over->reason);
}

BOOST_AUTO_TEST_CASE(a_token_from_any_earlier_page_is_a_cycle) {
  // A -> B -> A: the previous token differs, an earlier one does not.
  page_bookkeeping pages(1 << 30, "the collection");
  BOOST_TEST(!pages.count_answer(100));
  BOOST_TEST(!pages.follow("A"));
  BOOST_TEST(!pages.count_answer(100));
  BOOST_TEST(!pages.follow("B"));
  BOOST_TEST(!pages.count_answer(100));
  const auto cycle = pages.follow("A");
  BOOST_TEST_REQUIRE(cycle.has_value());
  BOOST_TEST((cycle->kind == failure_kind::transient));  // the Store's doing, not the player's
  BOOST_TEST(cycle->code == "bad_answer");
  BOOST_TEST(cycle->reason.find("led back to a page it had already given") != std::string::npos, cycle->reason);
  BOOST_TEST(cycle->reason.find("after 3 pages") != std::string::npos, cycle->reason);
}

BOOST_AUTO_TEST_CASE(a_token_repeated_at_once_and_a_long_cycle_are_both_caught) {
  page_bookkeeping same(1 << 30, "subscriptions");
  BOOST_TEST(!same.follow("T"));
  BOOST_TEST(same.follow("T").has_value());

  page_bookkeeping longer(1 << 30, "the collection");
  for (int i = 0; i < 500; ++i) BOOST_TEST_REQUIRE(!longer.follow("token-" + std::to_string(i)));
  BOOST_TEST(longer.follow("token-17").has_value());
}
