// The page loop shared by every paged Store read, over scripted answers: it follows continuation tokens to
// the last page and stops at max_pages, at the byte cap, at a token seen before, and at a failed page.
#define BOOST_TEST_MODULE page_loop
#include <boost/test/unit_test.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <vector>

#include "sync/page_loop.hpp"

using namespace esd::sync;
namespace asio = boost::asio;

namespace {

// A Store that answers page after page from a script; a page is its body, or a failure to give instead.
// Its body is "<token>" with the token of the next page, "" on the last one.
struct scripted_store {
  std::vector<std::variant<std::string, sync_failure>> pages;
  std::vector<std::optional<std::string>> asked_with;  // the continuation of each request
  std::vector<int> read_pages;                         // the page numbers given to the reader

  std::optional<sync_failure> read_all(const page_limits& limits) {
    const page_fetcher fetch =
        [this](const std::optional<std::string>& continuation) -> asio::awaitable<std::variant<std::string, sync_failure>> {
      const std::size_t n = asked_with.size();
      asked_with.push_back(continuation);
      if (n >= pages.size()) co_return transient("script", "asked for more pages than scripted");
      co_return pages[n];
    };
    const page_reader read = [this](const std::string& body, int page) -> page_step {
      read_pages.push_back(page);
      if (body == "garbage") return transient("bad_answer", "page " + std::to_string(page) + " made no sense");
      if (body.empty()) return std::optional<std::string>();
      return std::optional<std::string>(body);
    };
    asio::io_context ctx;
    std::optional<sync_failure> result;
    bool done = false;
    asio::co_spawn(ctx, follow_pages(limits, fetch, read),
                   [&](std::exception_ptr e, std::optional<sync_failure> r) {
                     if (e) std::rethrow_exception(e);
                     result = std::move(r);
                     done = true;
                   });
    ctx.run();
    BOOST_TEST_REQUIRE(done);
    return result;
  }
};

page_limits limits(int max_pages, std::uint64_t max_bytes = 1 << 20) { return {max_pages, max_bytes, "the collection"}; }

}  // namespace

BOOST_AUTO_TEST_CASE(follows_tokens_to_the_last_page) {
  scripted_store store{{std::string("A"), std::string("B"), std::string("")}, {}, {}};
  BOOST_TEST(!store.read_all(limits(10)).has_value());
  BOOST_TEST_REQUIRE(store.asked_with.size() == 3u);
  BOOST_TEST(!store.asked_with[0].has_value());  // the first page: no token
  BOOST_TEST(*store.asked_with[1] == "A");
  BOOST_TEST(*store.asked_with[2] == "B");
  BOOST_TEST((store.read_pages == std::vector<int>{1, 2, 3}));
}

BOOST_AUTO_TEST_CASE(a_token_from_an_earlier_page_ends_the_read_without_asking_again) {
  scripted_store store{{std::string("A"), std::string("B"), std::string("A"), std::string("")}, {}, {}};
  const auto failure = store.read_all(limits(10));
  BOOST_TEST_REQUIRE(failure.has_value());
  BOOST_TEST((failure->kind == failure_kind::transient));
  BOOST_TEST(failure->code == "bad_answer");
  BOOST_TEST(failure->reason.find("the collection: ") == 0u, failure->reason);
  BOOST_TEST(store.asked_with.size() == 3u);  // A -> B -> A: the fourth page is never asked for
}

BOOST_AUTO_TEST_CASE(max_pages_ends_the_read_before_the_page_over_it) {
  scripted_store store{{std::string("A"), std::string("B"), std::string("C"), std::string("")}, {}, {}};
  const auto failure = store.read_all(limits(3));
  BOOST_TEST_REQUIRE(failure.has_value());
  BOOST_TEST((failure->kind == failure_kind::permanent));  // the same pages would come again
  BOOST_TEST(failure->code == "too_many_pages");
  BOOST_TEST(failure->reason.find("the collection: more than 3 pages ([store] max_pages)") == 0u, failure->reason);
  BOOST_TEST(store.asked_with.size() == 3u);

  scripted_store exact{{std::string("A"), std::string("B"), std::string("")}, {}, {}};
  BOOST_TEST(!exact.read_all(limits(3)).has_value());  // exactly max_pages is fine
}

BOOST_AUTO_TEST_CASE(the_byte_cap_counts_across_pages) {
  const std::string big(600, 'x');  // a token too: the page's whole body counts
  scripted_store store{{big + "1", big + "2", std::string("")}, {}, {}};
  const auto failure = store.read_all(limits(10, 1000));
  BOOST_TEST_REQUIRE(failure.has_value());
  BOOST_TEST(failure->code == "too_large");
  BOOST_TEST((store.read_pages == std::vector<int>{1}));  // the page over the cap is not read
}

BOOST_AUTO_TEST_CASE(a_failed_page_or_one_that_makes_no_sense_ends_the_read_with_its_failure) {
  scripted_store refused{{std::string("A"), permanent("store_rejected", "HTTP 400"), std::string("")}, {}, {}};
  const auto failure = refused.read_all(limits(10));
  BOOST_TEST_REQUIRE(failure.has_value());
  BOOST_TEST(failure->code == "store_rejected");
  BOOST_TEST(refused.asked_with.size() == 2u);

  scripted_store garbage{{std::string("A"), std::string("garbage"), std::string("")}, {}, {}};
  const auto bad = garbage.read_all(limits(10));
  BOOST_TEST_REQUIRE(bad.has_value());
  BOOST_TEST(bad->reason == "page 2 made no sense");
  BOOST_TEST(garbage.asked_with.size() == 2u);
}
