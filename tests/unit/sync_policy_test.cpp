// Retry and watermark policies in isolation.
#define BOOST_TEST_MODULE sync_policy
#include <boost/test/unit_test.hpp>

#include "sync/key_renewal.hpp"
#include "sync/player_sync.hpp"
#include "sync/retry_policy.hpp"

using namespace esd;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(backoff_doubles_with_jitter_and_a_cap) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 200; ++round) {
    for (int attempt = 1; attempt <= 12; ++attempt) {
      auto d = sync::retry_delay(attempt, 5s, 900s, std::nullopt, rng);
      const long long full = std::min<long long>(5000LL << std::min(attempt - 1, 20), 900'000);
      BOOST_TEST(d.count() >= full / 2);
      BOOST_TEST(d.count() <= full);
    }
  }
}

BOOST_AUTO_TEST_CASE(retry_after_is_a_floor) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100; ++i) {
    BOOST_TEST(sync::retry_delay(1, 1s, 10s, std::chrono::seconds(30), rng).count() >= 30'000);
    BOOST_TEST(sync::retry_delay(1, 1s, 10s, std::chrono::seconds(0), rng).count() >= 500);
  }
}

BOOST_AUTO_TEST_CASE(retry_after_header_forms) {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);  // 2015-10-21T07:28:00Z
  BOOST_TEST(sync::parse_retry_after("120", now)->count() == 120);
  BOOST_TEST(sync::parse_retry_after(" 7 ", now)->count() == 7);
  BOOST_TEST(sync::parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now)->count() == 30);
  BOOST_TEST(sync::parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now)->count() == 0);  // past: now
  BOOST_TEST(sync::parse_retry_after("99999999", now)->count() == 86'400);                 // capped
  BOOST_TEST(!sync::parse_retry_after("", now));
  BOOST_TEST(!sync::parse_retry_after("-5", now));
  BOOST_TEST(!sync::parse_retry_after("soon", now));
  BOOST_TEST(!sync::parse_retry_after("12s", now));
}

// Items the Store repeats (across pages) are written once: the one modified last, of equal dates the
// later one; the rest keep their order.
BOOST_AUTO_TEST_CASE(repeated_items_keep_the_newest) {
  auto item = [](std::string id, std::int64_t modified, std::string status) {
    store::collection_item i;
    i.item_id = std::move(id);
    i.product_id = "p";
    i.status = std::move(status);
    i.modified_date = store::store_time{modified};
    return i;
  };
  std::vector<store::collection_item> items{item("a", 10, "Active"), item("b", 20, "Active"), item("a", 30, "Revoked"),
                                            item("c", 5, "Active"), item("b", 15, "Expired"), item("c", 5, "Banned")};
  sync::keep_newest_per_item(items);
  BOOST_TEST_REQUIRE(items.size() == 3u);
  BOOST_TEST(items[0].item_id == "b");  // b's newest (20) was its first
  BOOST_TEST(items[0].status == "Active");
  BOOST_TEST(items[1].item_id == "a");  // a's newest (30) came later
  BOOST_TEST(items[1].status == "Revoked");
  BOOST_TEST(items[2].item_id == "c");  // equal dates: the later one
  BOOST_TEST(items[2].status == "Banned");

  std::vector<store::collection_item> unique{item("x", 1, "Active"), item("y", 2, "Active")};
  sync::keep_newest_per_item(unique);
  BOOST_TEST(unique.size() == 2u);
  BOOST_TEST(unique[0].item_id == "x");
}

BOOST_AUTO_TEST_CASE(modified_after_is_the_watermark_minus_the_overlap) {
  db::sync_job job;
  BOOST_TEST(!sync::modified_after_for(job, 300s));  // first sync: everything
  job.watermark = store::store_time{1'700'000'000'123'456};
  BOOST_TEST(sync::modified_after_for(job, 300s)->micros == 1'700'000'000'123'456 - 300'000'000);
  BOOST_TEST(sync::modified_after_for(job, 0s)->micros == 1'700'000'000'123'456);
  job.full_sync = true;
  BOOST_TEST(!sync::modified_after_for(job, 300s));  // full: ignore the watermark
}

BOOST_AUTO_TEST_CASE(renewal_is_due_by_age_or_by_nearness_of_expiry) {
  using esd::store::store_time;
  const long long day = 86'400'000'000LL;
  const store_time now{1'800'000'000'000'000LL};
  auto at = [&](long long days) { return store_time{now.micros + days * day}; };
  const auto renew_after = std::chrono::seconds(14 * 86400), before = std::chrono::seconds(7 * 86400);
  BOOST_TEST(!sync::renewal_due(at(-13), at(17), renew_after, before, now));  // 13 days old
  BOOST_TEST(sync::renewal_due(at(-14), at(16), renew_after, before, now));   // 14 days: due
  BOOST_TEST(sync::renewal_due(at(-15), at(15), renew_after, before, now));   // day 15
  BOOST_TEST(sync::renewal_due(at(-1), at(6), renew_after, before, now));     // young, but near its end
  BOOST_TEST(!sync::renewal_due(std::nullopt, at(8), renew_after, before, now));
  BOOST_TEST(sync::renewal_due(std::nullopt, at(7), renew_after, before, now));
  BOOST_TEST(!sync::renewal_due(std::nullopt, std::nullopt, renew_after, before, now));
  // The old 90-day keys: renewed at 14 days just the same.
  BOOST_TEST(sync::renewal_due(at(-14), at(76), renew_after, before, now));
}

// The renew request carries the service token and the key: only the documented endpoint may receive it.
BOOST_AUTO_TEST_CASE(refresh_uri_must_be_the_documented_renew_endpoint) {
  for (const char* good : {"https://collections.mp.microsoft.com/v6.0/b2b/keys/renew",
                           "https://purchase.mp.microsoft.com/v6.0/b2b/keys/renew",
                           "https://localhost:8443/v6.0/b2b/keys/renew"}) {
    BOOST_TEST(sync::is_documented_renew_url(good), good);
  }
  for (const char* bad :
       {"https://collections.mp.microsoft.com/v6.0/collections/consume?evil=1",
        "https://collections.mp.microsoft.com/v6.0/collections/consume",
        "https://collections.mp.microsoft.com/v6.0/b2b/keys/renew?evil=1",
        "https://collections.mp.microsoft.com/v6.0/b2b/keys/renew?",
        "https://collections.mp.microsoft.com/v6.0/b2b/keys/renew#frag",
        "https://user:pw@collections.mp.microsoft.com/v6.0/b2b/keys/renew",
        "https://collections.mp.microsoft.com/v6.0/b2b/keys/renew/",
        "https://collections.mp.microsoft.com/v6.0/b2b/keys/renew/../../collections/consume",
        "https://collections.mp.microsoft.com/v6.0/b2b/keys/%72enew",
        "https://collections.mp.microsoft.com/V6.0/B2B/KEYS/RENEW",
        "https://collections.mp.microsoft.com//v6.0/b2b/keys/renew", "https://collections.mp.microsoft.com",
        "http://collections.mp.microsoft.com/v6.0/b2b/keys/renew", ""}) {
    BOOST_TEST(!sync::is_documented_renew_url(bad), bad);
  }
}
