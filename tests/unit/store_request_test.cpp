// The Store call path's policies that need no network: when a 429 is waited out inside a sync, how every
// 4xx is read (one rule for every Store call), and the endpoint names the request metric carries.
#define BOOST_TEST_MODULE store_request
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include "sync/store_request.hpp"

using namespace esd::sync;
using esd::store::key_kind;
using namespace std::chrono_literals;

namespace {

sync_failure throttled(std::optional<std::chrono::seconds> retry_after) {
  return transient("throttled", "HTTP 429", retry_after);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_short_retry_after_is_waited_out_a_few_times_in_a_row) {
  for (int waits = 0; waits < max_inline_throttle_waits; ++waits)
    BOOST_TEST((inline_throttle_wait(throttled(2s), waits, 2000ms) == std::optional(2s)));
  BOOST_TEST(!inline_throttle_wait(throttled(2s), max_inline_throttle_waits, 2000ms));  // then recorded
  BOOST_TEST(max_inline_throttle_waits == 3);
}

BOOST_AUTO_TEST_CASE(a_retry_after_over_max_inline_wait_or_none_is_recorded_at_once) {
  BOOST_TEST(!inline_throttle_wait(throttled(3s), 0, 2000ms));
  BOOST_TEST(!inline_throttle_wait(throttled(2s), 0, 1999ms));
  BOOST_TEST(!inline_throttle_wait(throttled(std::nullopt), 0, 10000ms));  // no Retry-After: backoff decides
}

BOOST_AUTO_TEST_CASE(a_retry_after_of_zero_still_pauses) {
  BOOST_TEST((inline_throttle_wait(throttled(0s), 0, 2000ms) == std::optional(1s)));
}

// Microsoft's pages for these APIs document only the 401 reasons; the rest is HTTP's meaning. A request
// the Store read and refused (400, 409, 413, 422) fails at once; any other 4xx (403, 404, 405, ...) is an
// endpoint or app setup matter on our side, retried and never the player's fault; the same on every call.
BOOST_AUTO_TEST_CASE(every_4xx_is_read_by_one_rule_on_every_call) {
  for (int status = 400; status < 500; ++status) {
    for (auto key : {key_kind::collections, key_kind::purchase}) {
      const auto a = classify_store_answer(status, {}, "", store_call{"the call", key, true});
      BOOST_TEST(!a.failure.dead_key.has_value(), status);  // no reason about the key: never a dead key
      if (status == 400 || status == 409 || status == 413 || status == 422) {
        BOOST_TEST((a.verdict == store_verdict::rejected), status);
        BOOST_TEST((a.failure.kind == failure_kind::permanent), status);
      } else if (status == 429) {
        BOOST_TEST((a.verdict == store_verdict::throttled), status);
      } else {
        BOOST_TEST((a.verdict == store_verdict::failed), status);
        BOOST_TEST((a.failure.kind == failure_kind::transient), status);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(endpoint_labels_are_the_documented_ones) {
  std::ifstream readme(ESD_SOURCE_DIR "/README.md");
  std::stringstream text;
  text << readme.rdbuf();
  const std::string doc = text.str();
  const auto row = doc.find("`entitlement_syncd_store_requests_total{endpoint,status}`");
  BOOST_TEST_REQUIRE(row != std::string::npos);
  const std::string line = doc.substr(row, doc.find('\n', row) - row);
  for (auto e : {api_endpoint::collections_query, api_endpoint::consume, api_endpoint::grant,
                 api_endpoint::recurrences_query, api_endpoint::key_renew, api_endpoint::entra_token}) {
    const std::string label(endpoint_label(e));
    BOOST_TEST(line.find("`" + label + "`") != std::string::npos, label);
  }
}
