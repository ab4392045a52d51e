// The purchase side's wire formats, against the Store's documented bodies.
#define BOOST_TEST_MODULE purchase
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include "db/pg_timestamp.hpp"
#include "fixture_file.hpp"
#include "store/purchase.hpp"

using namespace esd::store;
using esd::db::to_pg_timestamptz;
using esd::test::fixture;
namespace json = boost::json;

namespace {
std::string iso(const std::optional<store_time>& t) { return t ? to_pg_timestamptz(*t) : "(none)"; }
}  // namespace

BOOST_AUTO_TEST_CASE(grant_request_has_the_documented_fields) {
  grant_request_v6 g;
  g.purchase_key = "eyJ0eXAiOiJK";
  g.availability_id = "9RT7C09D5J3W";
  g.product_id = "9NBLGGH5WVP6";
  g.sku_id = "0010";
  g.order_id = "3eea1529-611e-4aee-915c-345494e4ee76";
  const auto sent = json::parse(build_grant_request_v6(g)).as_object();
  auto documented = json::parse(fixture("purchases_grant_request_v6.json")).as_object();
  documented["b2bKey"] = "eyJ0eXAiOiJK";
  BOOST_TEST(sent.size() == documented.size());
  for (const auto& [k, v] : documented) BOOST_TEST((sent.at(k) == v), k);

  g.quantity = 3;
  g.dev_offer_id = "offer-1";
  const auto more = json::parse(build_grant_request_v6(g)).as_object();
  BOOST_TEST(more.at("quantity").as_int64() == 3);
  BOOST_TEST(more.at("devOfferId").as_string() == "offer-1");
}

BOOST_AUTO_TEST_CASE(grant_response_fixture_is_read) {
  auto r = parse_grant_response(fixture("purchases_grant_response_v6.json"), "3EEA1529-611E-4AEE-915C-345494E4EE76");
  BOOST_TEST_REQUIRE(r.error == "");
  BOOST_TEST(r.answer->order_state == "Purchased");
  BOOST_TEST(r.answer->line_item_id == "2814d758-3ee3-46b3-9671-4fb3bdae9ffe");
  BOOST_TEST(r.answer->fulfillment_state == "Fulfilled");
}

BOOST_AUTO_TEST_CASE(grant_response_for_another_order_or_without_state_is_refused) {
  auto other = parse_grant_response(fixture("purchases_grant_response_v6.json"), "00000000-0000-0000-0000-000000000000");
  BOOST_TEST(!other);
  BOOST_TEST(other.error.find("not the one sent") != std::string::npos);
  BOOST_TEST(!parse_grant_response(R"({"orderId":"a"})", "a"));
  BOOST_TEST(!parse_grant_response(R"({"orderId":"a","orderState":"Purchased","orderLineItems":{}})", "a"));
  BOOST_TEST(!parse_grant_response(R"({"orderId":"a","orderState":"Purchased","orderLineItems":[)", "a"));
  BOOST_TEST(!parse_grant_response("[]", "a"));
  BOOST_TEST(!parse_grant_response("", "a"));
  BOOST_TEST(static_cast<bool>(parse_grant_response(R"({"orderId":"a","orderState":"Purchased"})", "a")));
}

BOOST_AUTO_TEST_CASE(recurrences_uwp_fixture_with_7_digit_fractions) {
  auto r = parse_recurrences_response(fixture("recurrences_query_response_v8.json"));
  BOOST_TEST_REQUIRE(r.error == "");
  BOOST_TEST_REQUIRE(r.page->items.size() == 1u);
  const auto& s = r.page->items[0];
  BOOST_TEST(s.id == "mdr:0:bc0cb6960acd4515a0e1d638192d77b7:77d5ebee-0310-4d23-b204-83e8613baaac");
  BOOST_TEST(s.product_id == "9NBLGGH52Q8X");
  BOOST_TEST(s.sku_id == "0024");
  BOOST_TEST(s.state == "Active");
  BOOST_TEST(s.market == "US");
  BOOST_TEST((s.auto_renew == std::optional<bool>(true)));
  BOOST_TEST(!s.is_trial.has_value());
  BOOST_TEST(!s.cancellation_date.has_value());
  BOOST_TEST(!s.expiration_time_with_grace.has_value());
  BOOST_TEST(iso(s.expiration_time) == "2017-06-11 03:07:49.255294+00");  // 7th digit truncated
  BOOST_TEST(iso(s.start_time) == "2017-01-10 21:07:49.255294+00");
  BOOST_TEST(iso(s.last_modified) == "2017-01-08 21:07:51.145964+00");
  BOOST_TEST(!r.page->continuation_token.has_value());
}

BOOST_AUTO_TEST_CASE(recurrences_gdk_fixture_with_2_digit_fractions_and_cancellations) {
  auto r = parse_recurrences_response(fixture("recurrences_query_response_v8_gdk.json"));
  BOOST_TEST_REQUIRE(r.error == "");
  BOOST_TEST_REQUIRE(r.page->items.size() == 3u);
  const auto& active = r.page->items[0];
  BOOST_TEST(active.state == "Active");
  BOOST_TEST((active.is_trial == std::optional<bool>(false)));
  BOOST_TEST(iso(active.expiration_time) == "2021-08-25 23:59:59.000000+00");
  BOOST_TEST(iso(active.expiration_time_with_grace) == "2021-09-08 23:59:59.000000+00");
  BOOST_TEST(iso(active.last_modified) == "2021-07-26 22:59:55.990000+00");
  BOOST_TEST(!active.cancellation_date.has_value());
  const auto& canceled = r.page->items[1];
  BOOST_TEST(canceled.state == "Canceled");
  BOOST_TEST(iso(canceled.cancellation_date) == "2021-07-26 21:08:31.520000+00");
  BOOST_TEST((r.page->items[2].auto_renew == std::optional<bool>(false)));
}

BOOST_AUTO_TEST_CASE(recurrences_answers_that_make_no_sense_are_errors) {
  BOOST_TEST(!parse_recurrences_response(fixture("recurrences_query_error_500_internal_server_error_truncated.json")));
  auto no_id = parse_recurrences_response(R"({"items":[{"productId":"x"}]})");
  BOOST_TEST(!no_id);
  BOOST_TEST(no_id.error.find("items[0]") != std::string::npos);
  auto bad_date = parse_recurrences_response(R"({"items":[{"id":"a","expirationTime":"2021-06-142T23:57:51Z"}]})");
  BOOST_TEST(!bad_date);
  BOOST_TEST(bad_date.error.find("expirationTime") != std::string::npos);
  BOOST_TEST(!parse_recurrences_response(R"({"items":[{"id":"a"},)"));
  BOOST_TEST(!parse_recurrences_response(R"({"items":"none"})"));
  auto paged = parse_recurrences_response(R"({"items":[{"id":"a","autoRenew":null}],"continuationToken":"t1"})");
  BOOST_TEST_REQUIRE(static_cast<bool>(paged));
  BOOST_TEST((paged.page->continuation_token == std::optional<std::string>("t1")));
  BOOST_TEST(!paged.page->items[0].auto_renew.has_value());
}

// Text the database cannot hold refuses the whole answer (a grant is retried with the same order id, a
// subscriptions read fails alone), with the field named.
BOOST_AUTO_TEST_CASE(purchase_answers_with_text_the_database_cannot_hold_are_refused_naming_the_field) {
  auto nul_state = parse_grant_response(R"({"orderId":"a","orderState":"Purch\u0000ased"})", "a");
  BOOST_TEST(!nul_state);
  BOOST_TEST(nul_state.error.find("orderState contains a NUL") == 0u, nul_state.error);
  auto long_line = parse_grant_response(
      R"({"orderId":"a","orderState":"Purchased","orderLineItems":[{"lineItemId":")" + std::string(600, 'l') + "\"}]}",
      "a");
  BOOST_TEST(!long_line);
  BOOST_TEST(long_line.error.find("lineItemId is 600 bytes long") != std::string::npos, long_line.error);

  auto nul_product = parse_recurrences_response(R"({"items":[{"id":"a","productId":"CFQ\u0000"}]})");
  BOOST_TEST(!nul_product);
  BOOST_TEST(nul_product.error.find("items[0]: productId contains a NUL") == 0u, nul_product.error);
  auto giant_id = parse_recurrences_response(R"({"items":[{"id":")" + std::string(15u << 20, 'g') + "\"}]}");
  BOOST_TEST(!giant_id);
  BOOST_TEST(giant_id.error.find("items[0]: id is 15728640 bytes long") == 0u);
  BOOST_TEST(giant_id.error.size() < 200u);
}

BOOST_AUTO_TEST_CASE(recurrences_query_and_continuation) {
  auto first = json::parse(build_recurrences_query("KEY", std::nullopt)).as_object();
  BOOST_TEST(first.size() == 1u);
  BOOST_TEST(first.at("b2bKey").as_string() == "KEY");
  auto next = json::parse(build_recurrences_query("KEY", std::string("{\"page\":2}"))).as_object();
  BOOST_TEST(next.at("continuationToken").as_string() == "{\"page\":2}");
}

BOOST_AUTO_TEST_CASE(consume_request_matches_the_documented_item_and_tracking_form) {
  auto sent = json::parse(build_consume_request_v6("eyJ0eXAiOi", "44c26106-4979-457b-af34-609ae97a084f",
                                                   "44db79ca-e31d-49e9-8896-fa5c7f892b40")).as_object();
  auto documented = json::parse(fixture("collections_consume_request_v6_itemid_trackingid.json")).as_object();
  BOOST_TEST(sent.at("itemId") == documented.at("itemId"));
  BOOST_TEST(sent.at("trackingId") == documented.at("trackingId"));
  const auto& b = sent.at("beneficiary").as_object();
  BOOST_TEST(b.at("identityType").as_string() == "b2b");
  BOOST_TEST(b.at("identityValue").as_string() == "eyJ0eXAiOi");
  BOOST_TEST(b.contains("localTicketReference"));
  BOOST_TEST(sent.size() == documented.size());
}
