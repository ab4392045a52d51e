// One reading of every Store answer (collections query, consume, grant, recurrences, key renewal), against
// the Store's documented error bodies: a 401 judges a key only once a fresh service token was refused too.
#define BOOST_TEST_MODULE store_answer
#include <boost/test/unit_test.hpp>

#include "fixture_file.hpp"
#include "sync/key_refusal_burst.hpp"
#include "sync/store_answer.hpp"

using namespace esd::sync;
using esd::store::key_kind;
using esd::test::fixture;
using namespace std::chrono_literals;

namespace {

// The Store's error envelope as collections.mp and purchase.mp send it: the HTTP status name in "code",
// the reason in "innererror.code" (query-for-products, grant-free-products: "Error codes").
std::string envelope(const std::string& outer, const std::string& inner, const std::string& message = "") {
  return R"({"code":")" + outer + R"(","data":[],"details":[],"innererror":{"code":")" + inner +
         R"(","data":[],"details":[],"message":")" + message + R"("},"message":"","source":"CollectionsFD"})";
}

store_answer answer(int status, const std::string& body, key_kind key = key_kind::collections, bool fresh = false,
                    std::map<std::string, std::string> headers = {}) {
  return classify_store_answer(status, headers, body, store_call{"the call", key, fresh});
}

}  // namespace

BOOST_AUTO_TEST_CASE(success_is_ok) {
  BOOST_TEST((answer(200, "{}").verdict == store_verdict::ok));
  BOOST_TEST((answer(201, "{}").verdict == store_verdict::ok));
  BOOST_TEST((answer(204, "").verdict == store_verdict::ok));
}

BOOST_AUTO_TEST_CASE(a_first_401_is_never_a_verdict_on_the_key) {
  for (const auto& body : {envelope("Unauthorized", "AuthenticationTokenInvalid"),
                           envelope("Unauthorized", "InconsistentClientId"),
                           envelope("Unauthorized", "PartnerAadTicketRequired"),
                           std::string(R"({"code":"AuthenticationTokenInvalid","message":"x"})"), std::string()}) {
    for (auto key : {key_kind::collections, key_kind::purchase}) {
      auto a = answer(401, body, key);
      BOOST_TEST((a.verdict == store_verdict::token_refused), body);
      BOOST_TEST((a.failure.kind == failure_kind::transient), body);
      BOOST_TEST(!a.failure.dead_key.has_value(), body);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_key_reason_with_a_fresh_token_is_the_key_refused) {
  for (auto key : {key_kind::collections, key_kind::purchase}) {
    auto a = answer(401, envelope("Unauthorized", "AuthenticationTokenInvalid", "Authentication token supplied is invalid"),
                    key, true);
    BOOST_TEST((a.verdict == store_verdict::key_refused));
    BOOST_TEST((a.failure.kind == failure_kind::permanent));
    BOOST_TEST(a.failure.code == "dead_key");
    BOOST_TEST((a.failure.dead_key == std::optional<key_kind>(key)));
    BOOST_TEST(a.failure.reason.find("AuthenticationTokenInvalid") != std::string::npos, a.failure.reason);
    BOOST_TEST(a.failure.reason.find(key == key_kind::purchase ? "purchase key" : "collections key") !=
                   std::string::npos, a.failure.reason);
    BOOST_TEST(a.failure.reason.find("the call") == 0u, a.failure.reason);
  }
  // The reason is read the same way whether it comes in innererror.code or (older bodies) in code alone,
  // and the status name in code is never taken for the reason.
  auto top_only = answer(401, R"({"code":"InconsistentClientId","message":"x"})", key_kind::purchase, true);
  BOOST_TEST((top_only.verdict == store_verdict::key_refused));
  auto status_name_only = answer(401, R"({"code":"Unauthorized","message":"x"})", key_kind::purchase, true);
  BOOST_TEST((status_name_only.verdict == store_verdict::failed));
  auto wrapped = answer(401, R"({"error":{"code":"Unauthorized","innererror":{"code":"AuthenticationTokenInvalid"}}})",
                        key_kind::collections, true);
  BOOST_TEST((wrapped.verdict == store_verdict::key_refused));
}

BOOST_AUTO_TEST_CASE(a_fresh_token_refused_for_a_reason_of_the_token_is_not_the_players_fault) {
  for (const auto& body : {envelope("Unauthorized", "PartnerAadTicketRequired"), std::string("<html>401</html>"),
                           std::string()}) {
    auto a = answer(401, body, key_kind::collections, true);
    BOOST_TEST((a.verdict == store_verdict::failed), body);
    BOOST_TEST((a.failure.kind == failure_kind::transient), body);
    BOOST_TEST(a.failure.code == "service_token", body);
    BOOST_TEST(!a.failure.dead_key.has_value(), body);
  }
}

BOOST_AUTO_TEST_CASE(rejected_throttled_and_failed_answers) {
  auto bad = answer(400, envelope("BadRequest", "InvalidParameter", "availabilityId is unknown"), key_kind::purchase);
  BOOST_TEST((bad.verdict == store_verdict::rejected));
  BOOST_TEST((bad.failure.kind == failure_kind::permanent));
  BOOST_TEST(bad.failure.code == "store_rejected");
  BOOST_TEST(bad.failure.reason.find("InvalidParameter") != std::string::npos, bad.failure.reason);
  BOOST_TEST(bad.failure.reason.find("availabilityId is unknown") != std::string::npos, bad.failure.reason);
  BOOST_TEST(!bad.failure.dead_key.has_value());

  auto conflict = answer(409, envelope("Conflict", "Conflict", "orderId was used for another order"), key_kind::purchase);
  BOOST_TEST((conflict.verdict == store_verdict::rejected));
  BOOST_TEST(conflict.failure.code == "store_rejected");

  auto server = answer(500, fixture("recurrences_query_error_500_internal_server_error_truncated.json"), key_kind::purchase);
  BOOST_TEST((server.verdict == store_verdict::failed));
  BOOST_TEST((server.failure.kind == failure_kind::transient));
  BOOST_TEST(server.failure.reason.find("HTTP 500 UnknownInternalFailure") != std::string::npos, server.failure.reason);

  auto throttled = answer(429, fixture("rate_limit_429_body_template.txt"), key_kind::collections, false,
                          {{"retry-after", "7"}});
  BOOST_TEST((throttled.verdict == store_verdict::throttled));
  BOOST_TEST((throttled.failure.kind == failure_kind::transient));
  BOOST_TEST((throttled.failure.retry_after == std::optional<std::chrono::seconds>(7s)));
  auto throttled_json = answer(429, fixture("xbox_live_generic_429_throttle_body_example.json"));
  BOOST_TEST((throttled_json.verdict == store_verdict::throttled));

  // Setup problems on our side (an endpoint, the app's association) are retried, never the player's fault.
  for (int status : {403, 404, 408, 502, 503}) {
    auto a = answer(status, envelope("Forbidden", "Forbidden"));
    BOOST_TEST((a.verdict == store_verdict::failed), status);
    BOOST_TEST((a.failure.kind == failure_kind::transient), status);
    BOOST_TEST(!a.failure.dead_key.has_value(), status);
  }
}

BOOST_AUTO_TEST_CASE(the_reason_of_an_error_body) {
  BOOST_TEST(store_error_reason(envelope("Unauthorized", "AuthenticationTokenInvalid")) == "AuthenticationTokenInvalid");
  BOOST_TEST(store_error_reason(R"({"code":"InconsistentClientId"})") == "InconsistentClientId");
  BOOST_TEST(store_error_reason("not json").empty());
}

BOOST_AUTO_TEST_CASE(refusals_of_a_few_players_stand) {
  key_refusal_burst burst(3, 60s);
  const auto t0 = key_refusal_burst::clock::time_point{} + 1h;
  BOOST_TEST((burst.refused("a", t0) == key_refusal_burst::judgement::stands));
  BOOST_TEST((burst.refused("b", t0 + 1s) == key_refusal_burst::judgement::stands));
  BOOST_TEST((burst.refused("c", t0 + 2s) == key_refusal_burst::judgement::stands));
  // One player refused again is still one player.
  BOOST_TEST((burst.refused("c", t0 + 3s) == key_refusal_burst::judgement::stands));
  BOOST_TEST((burst.refused("a", t0 + 4s) == key_refusal_burst::judgement::stands));
  // Spread out over more than the window, any number stand.
  key_refusal_burst slow(3, 60s);
  for (int i = 0; i < 100; ++i)
    BOOST_TEST((slow.refused("p" + std::to_string(i), t0 + i * 21s) == key_refusal_burst::judgement::stands), i);
}

BOOST_AUTO_TEST_CASE(refusals_of_many_players_at_once_are_a_burst_until_they_slow_down) {
  key_refusal_burst burst(3, 60s);
  const auto t0 = key_refusal_burst::clock::time_point{} + 1h;
  for (int i = 0; i < 3; ++i) BOOST_TEST((burst.refused("p" + std::to_string(i), t0) == key_refusal_burst::judgement::stands));
  BOOST_TEST((burst.refused("p3", t0 + 1s) == key_refusal_burst::judgement::burst_began));
  for (int i = 4; i < 1000; ++i)
    BOOST_TEST((burst.refused("p" + std::to_string(i), t0 + 2s) == key_refusal_burst::judgement::in_burst));
  // Once the window has passed without more, a refusal stands again.
  BOOST_TEST((burst.refused("late", t0 + 63s) == key_refusal_burst::judgement::stands));
  // A new burst is announced again.
  BOOST_TEST((burst.refused("x1", t0 + 64s) == key_refusal_burst::judgement::stands));
  BOOST_TEST((burst.refused("x2", t0 + 64s) == key_refusal_burst::judgement::stands));
  BOOST_TEST((burst.refused("x3", t0 + 64s) == key_refusal_burst::judgement::burst_began));
}
