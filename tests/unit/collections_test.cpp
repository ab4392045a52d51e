#define BOOST_TEST_MODULE collections
#include "store/collections.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include "fixture_file.hpp"
#include <fstream>
#include <sstream>

#include "store/store_error.hpp"

namespace json = boost::json;
using namespace esd::store;

namespace {

using esd::test::fixture;

collections_page parse_ok(std::string_view body) {
  auto r = parse_collections_response(body);
  BOOST_TEST_REQUIRE(bool(r), r.error);
  BOOST_TEST(r.error.empty());
  return *r.page;
}

std::string parse_error(std::string_view body) {
  collections_parse_result r;
  BOOST_REQUIRE_NO_THROW(r = parse_collections_response(body));
  BOOST_TEST(!r);
  BOOST_TEST(!r.error.empty());
  return r.error;
}

store_time date(std::string_view s) { return *parse_store_date(s); }

json::value text(std::string_view s) { return json::value(s); }

// A minimal valid v8 item, to be broken one field at a time.
json::object minimal_item() {
  return json::parse(R"({"id":"i1","productId":"9N30KZZF4BR9","status":"Active",
                         "modifiedDate":"2021-08-30T21:53:08.2589804+00:00"})")
      .as_object();
}

std::string body_with(const json::object& item) {
  return json::serialize(json::object{{"items", json::array{minimal_item(), item}}});
}

}  // namespace

BOOST_AUTO_TEST_CASE(v6_answer) {
  auto page = parse_ok(fixture("collections_query_response_v6.json"));
  BOOST_TEST(!page.continuation_token);
  BOOST_TEST_REQUIRE(page.items.size() == 1u);
  const auto& i = page.items[0];
  BOOST_TEST(i.item_id == "4b8fbb13127a41f299270ea668681c1d");  // from itemId
  BOOST_TEST(i.product_id == "9NBLGGH5WVP6");
  BOOST_TEST(i.sku_id == "0010");
  BOOST_TEST(i.product_type == "UnmanagedConsumable");  // from productType
  BOOST_TEST(i.status == "Active");
  BOOST_TEST(!i.quantity);
  BOOST_TEST((i.acquired_date == date("2015-09-22T19:22:51.2068724+00:00")));
  BOOST_TEST((i.start_date == date("2015-09-22T19:22:51.2068724+00:00")));
  BOOST_TEST(i.end_date->is_infinity());
  BOOST_TEST((i.modified_date == date("2015-09-22T19:22:51.2513155+00:00")));
  BOOST_TEST(i.transaction_id == "4ba5960d-4ec6-4a81-ac20-aafce02ddf31");
  BOOST_TEST(i.order_id == "4ba5960d-4ec6-4a81-ac20-aafce02ddf31");
  BOOST_TEST(i.dev_offer_id == "f9587c53-540a-498b-a281-8a349491ed47");
  BOOST_TEST(i.in_app_offer_token == "consumable2");
  BOOST_TEST(i.local_ticket_reference == "1055521810674918");
  BOOST_TEST(i.ownership_type == "OwnedByBeneficiary");
  BOOST_TEST(i.sku_type == "Full");
  BOOST_TEST(i.purchaser_identity_type == "pub");
  BOOST_TEST(i.purchaser_identity_value == "user123");
  BOOST_TEST(i.tags.empty());
  BOOST_TEST(i.fulfillment_data.empty());
  BOOST_TEST(!i.is_trial);
  BOOST_TEST(!i.trial_time_remaining_micros);
}

void check_v8_v9_items(const collections_page& page) {
  BOOST_TEST_REQUIRE(page.continuation_token.has_value());
  // The token is itself JSON text; it must come back verbatim so we can send it on the next request.
  BOOST_TEST(*page.continuation_token == R"({"checkSatisfactionIndex":2})");
  BOOST_TEST_REQUIRE(page.items.size() == 2u);

  const auto& durable = page.items[0];
  BOOST_TEST(durable.item_id == "1046015f83a8478397064c915224e5d3");  // from id
  BOOST_TEST(durable.product_type == "Durable");                      // from productKind
  BOOST_TEST(durable.quantity.value_or(-1) == 1);
  BOOST_TEST(durable.acquisition_type == "Single");
  BOOST_TEST((durable.end_date == date("2021-08-31T21:53:07.4374279+00:00")));
  BOOST_TEST(durable.is_trial.value_or(true) == false);
  BOOST_TEST(durable.is_in_trial_period.value_or(true) == false);
  BOOST_TEST(!durable.trial_time_remaining_micros);
  BOOST_TEST(durable.recurrence_id.empty());

  const auto& game = page.items[1];
  BOOST_TEST(game.item_id == "27662ad4749342608ec09130b76601f9");
  BOOST_TEST(game.product_id == "9MXL21XPWWWK");
  BOOST_TEST(game.product_type == "Game");
  BOOST_TEST(game.end_date->is_infinity());
  BOOST_TEST((game.modified_date == date("2021-08-30T19:55:44.8043849+00:00")));
  BOOST_TEST(game.tags == std::vector<std::string>{"4c584d39-3132-3058-c050-5757574b8500"},
             boost::test_tools::per_element());
  BOOST_TEST(game.is_trial.value_or(false) == true);
  BOOST_TEST(game.is_in_trial_period.value_or(false) == true);
  BOOST_TEST(game.trial_time_remaining_micros.value_or(0) ==
             (9 * 3600 + 43 * 60 + 52) * 1'000'000LL + 858069);
}

BOOST_AUTO_TEST_CASE(v8_answer) {
  auto page = parse_ok(fixture("collections_query_response_v8.json"));
  check_v8_v9_items(page);
  BOOST_TEST(page.items[0].purchased_country == "US");
  BOOST_TEST(page.items[0].dev_offer_id.empty());
}

BOOST_AUTO_TEST_CASE(v9_answer) {
  check_v8_v9_items(parse_ok(fixture("collections_query_response_v9.json")));
}

BOOST_AUTO_TEST_CASE(v9_game_pass_item) {
  auto page = parse_ok(fixture("collections_query_response_v9_gamepass_pass_item.json"));
  BOOST_TEST(!page.continuation_token);
  BOOST_TEST_REQUIRE(page.items.size() == 1u);
  const auto& pass = page.items[0];
  BOOST_TEST(pass.item_id == "a1702e2c6cff4e0095b3c51d06d9fac9");
  BOOST_TEST(pass.product_type == "Pass");
  BOOST_TEST(pass.acquisition_type == "Recurring");
  BOOST_TEST(pass.sku_id.empty());
  BOOST_TEST(pass.recurrence_id ==
             "mdr:0:9ee54c66dc2a49ca81bd2c3eaf148826:a118bfe9-8175-4407-9d14-b2be4af30acd");
  BOOST_TEST(pass.end_date->is_infinity());
  BOOST_TEST((pass.start_date == date("2026-05-15T00:00:00+00:00")));
}

BOOST_AUTO_TEST_CASE(v9_recurrence_id_field) {
  auto item = minimal_item();
  item["recurrenceId"] = "mdr:0:abc";
  item["recurrenceData"] = json::object{};
  BOOST_TEST(parse_ok(body_with(item)).items[1].recurrence_id == "mdr:0:abc");
}

BOOST_AUTO_TEST_CASE(empty_and_last_pages) {
  BOOST_TEST(parse_ok(R"({"items":[]})").items.empty());
  BOOST_TEST(!parse_ok(R"({"items":[],"continuationToken":""})").continuation_token);
  BOOST_TEST(!parse_ok(R"({"items":[],"continuationToken":null})").continuation_token);
  BOOST_TEST(*parse_ok(R"({"items":[],"continuationToken":"abc"})").continuation_token == "abc");
}

BOOST_AUTO_TEST_CASE(unknown_keys_and_nulls_are_ignored) {
  auto item = minimal_item();
  item["$type"] = "collectionItemV9";
  item["somethingNew"] = json::object{{"nested", json::array{1, 2}}};
  item["skuId"] = nullptr;
  item["endDate"] = nullptr;
  auto page = parse_ok(body_with(item));
  BOOST_TEST(page.items[1].sku_id.empty());
  BOOST_TEST(!page.items[1].end_date);
}

BOOST_AUTO_TEST_CASE(malformed_answers) {
  BOOST_TEST(!parse_error("").empty());
  BOOST_TEST(parse_error("<html>502 Bad Gateway</html>").find("not valid JSON") != std::string::npos);
  BOOST_TEST(!parse_error("[]").empty());
  BOOST_TEST(parse_error(R"({"continuationToken":"x"})").find("items") != std::string::npos);
  BOOST_TEST(parse_error(R"({"items":{}})").find("not an array") != std::string::npos);
  BOOST_TEST(parse_error(R"({"items":[],"continuationToken":7})").find("continuationToken") !=
             std::string::npos);
  BOOST_TEST(parse_error(R"({"items":[1]})").find("items[0]") != std::string::npos);

  // Truncated mid-way, as a dropped connection would leave it.
  std::string v8 = fixture("collections_query_response_v8.json");
  for (std::size_t cut : {v8.size() / 4, v8.size() / 2, v8.size() - 3})
    BOOST_TEST(parse_error(v8.substr(0, cut)).find("not valid JSON") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_items_name_the_item_and_field) {
  struct bad_case {
    const char* field;
    json::value value;  // null here means: remove the field
    const char* expected;
  };
  const std::vector<bad_case> cases = {
      {"id", nullptr, "items[1]: id is missing"},
      {"id", "", "items[1]: id is empty"},
      {"id", 42, "items[1]: id is not a string"},
      {"productId", nullptr, "items[1]: productId is missing"},
      {"status", nullptr, "items[1]: status is missing"},
      {"modifiedDate", nullptr, "items[1]: modifiedDate is missing"},
      {"modifiedDate", "yesterday", "items[1]: modifiedDate is not a date: \"yesterday\""},
      {"acquiredDate", "2021-06-142T23:57:51.1415104+00:00", "items[1]: acquiredDate is not a date"},
      {"endDate", 1630360388, "items[1]: endDate is not a date"},
      {"quantity", "1", "items[1]: quantity is not an integer"},
      {"tags", "a,b", "items[1]: tags is not an array"},
      {"tags", json::array{"a", 1}, "items[1]: tags has an element that is not a string"},
      {"trialData", json::object{{"isTrial", "false"}}, "items[1].trialData: isTrial is not true or false"},
      {"trialData", json::object{{"trialTimeRemaining", "soon"}}, "items[1].trialData: trialTimeRemaining"},
      {"purchaser", "pub", "items[1]: purchaser is not an object"},
  };
  for (const auto& c : cases) {
    auto item = minimal_item();
    if (c.value.is_null())
      item.erase(c.field);
    else
      item[c.field] = c.value;
    BOOST_TEST_CONTEXT(c.field << " = " << json::serialize(c.value)) {
      std::string e = parse_error(body_with(item));
      BOOST_TEST(e.find(c.expected) == 0u, e);
    }
  }
}

// A well-formed item with a value the database cannot hold or beyond its bound is refused alone, with a
// reason naming the item and the field, and its modifiedDate (which the watermark must stay before).
BOOST_AUTO_TEST_CASE(values_refused_by_their_bound_refuse_the_item_alone) {
  struct refused_case {
    const char* field;
    json::value value;
    const char* expected;
  };
  const std::vector<refused_case> cases = {
      {"productId", text(std::string("9N\0evil", 7)), "items[1]: productId contains a NUL character"},
      {"id", text(std::string(513, 'i')), "items[1]: id is 513 bytes long, more than the 512 accepted"},
      {"productId", text(std::string(1 << 20, 'p')), "items[1]: productId is 1048576 bytes long"},
      {"skuId", text(std::string("00\0""10", 5)), "items[1]: skuId contains a NUL character"},
      {"transactionId", text(std::string(600, 't')), "items[1]: transactionId is 600 bytes long"},
      {"inAppOfferToken", text(std::string(16 * 1024 + 1, 'o')), "items[1]: inAppOfferToken is 16385 bytes long"},
      {"tags", json::array{"ok", text(std::string("a\0b", 3))}, "items[1]: tags contains a NUL character"},
      {"tags", json::array(300, "t"), "items[1]: tags has 300 elements, more than the 256 accepted"},
      {"satisfiedByProductIds", json::array{std::string(513, 's')}, "items[1]: satisfiedByProductIds is 513"},
      {"purchaser", json::object{{"identityValue", text(std::string("x\0", 2))}}, "items[1]: purchaser is refused"},
      {"quantity", -3, "items[1]: quantity is negative (-3)"},
      {"quantity", 4294967296, "items[1]: quantity is out of range (4294967296)"},
      {"quantity", -4294967296, "items[1]: quantity is out of range (-4294967296)"},
  };
  for (const auto& c : cases) {
    auto item = minimal_item();
    item["id"] = "i2";
    item["modifiedDate"] = "2021-09-01T00:00:00Z";
    item[c.field] = c.value;
    BOOST_TEST_CONTEXT(c.field) {
      auto page = parse_ok(body_with(item));
      BOOST_TEST_REQUIRE(page.items.size() == 1u);  // the other item is kept
      BOOST_TEST(page.items[0].item_id == "i1");
      BOOST_TEST_REQUIRE(page.refused.size() == 1u);
      BOOST_TEST(page.refused[0].reason.find(c.expected) == 0u, page.refused[0].reason);
      BOOST_TEST(page.refused[0].reason.size() < 400u);
      BOOST_TEST((page.refused[0].modified_date == date("2021-09-01T00:00:00Z")));
      BOOST_TEST(page.refused[0].reason.find('\0') == std::string::npos);
    }
  }
  // The item is named by its id when the id itself is fine.
  auto item = minimal_item();
  item["id"] = "named-item";
  item["productId"] = std::string("a\0", 2);
  BOOST_TEST(parse_ok(body_with(item)).refused.at(0).reason.find("(item \"named-item\")") != std::string::npos);
}

// What cannot be placed (no readable modifiedDate) or is not our shape refuses the whole answer, as do text
// problems outside the items and bodies that are not UTF-8 (then not JSON).
BOOST_AUTO_TEST_CASE(values_that_cannot_be_placed_refuse_the_answer) {
  auto item = minimal_item();
  item["productId"] = std::string("a\0", 2);
  item.erase("modifiedDate");
  BOOST_TEST(parse_error(body_with(item)).find("items[1]: productId contains a NUL") == 0u);
  BOOST_TEST(parse_error(R"({"items":[],"continuationToken":"a\u0000b"})").find("continuationToken contains a NUL") ==
             0u);
  BOOST_TEST(parse_error("{\"items\":[{\"id\":\"i\xff\"}]}").find("not valid JSON") != std::string::npos);
  // A long continuation token is free text, not an id.
  auto page = parse_ok(R"({"items":[],"continuationToken":")" + std::string(4000, 'c') + "\"}");
  BOOST_TEST(page.continuation_token->size() == 4000u);
}

BOOST_AUTO_TEST_CASE(v6_query_body_matches_the_doc) {
  const json::object doc = json::parse(fixture("collections_query_request_v6.json")).as_object();
  collections_query_v6 q;
  q.collections_key = "eyJ0eXAiOiJ\"quoted\"\\and\nnewline";  // must be escaped, not spliced in
  q.product_types = {"UnmanagedConsumable"};

  json::object sent = json::parse(build_collections_query_v6(q)).as_object();
  BOOST_TEST(sent.at("maxPageSize") == doc.at("maxPageSize"));
  BOOST_TEST(sent.at("productTypes") == doc.at("productTypes"));
  BOOST_TEST(sent.at("validityType") == doc.at("validityType"));
  const auto& b = sent.at("beneficiaries").as_array();
  BOOST_TEST_REQUIRE(b.size() == 1u);
  const auto& doc_b = doc.at("beneficiaries").as_array()[0].as_object();
  BOOST_TEST(b[0].as_object().size() == doc_b.size());
  BOOST_TEST(b[0].at("identityType") == doc_b.at("identityType"));
  BOOST_TEST(b[0].at("identityValue").as_string() == q.collections_key);
  BOOST_TEST(b[0].at("localTicketReference").as_string() == "");
  BOOST_TEST(!sent.contains("modifiedAfter"));  // first or full sync: everything
  BOOST_TEST(!sent.contains("continuationToken"));
}

BOOST_AUTO_TEST_CASE(v6_query_with_watermark_and_continuation) {
  collections_query_v6 q;
  q.collections_key = "key";
  q.product_types = {"Application", "Durable", "Game", "UnmanagedConsumable"};
  q.max_page_size = 25;
  q.modified_after = date("2015-09-22T19:22:51.2068724+00:00");
  q.continuation_token = R"({"checkSatisfactionIndex":2})";

  json::object sent = json::parse(build_collections_query_v6(q)).as_object();
  BOOST_TEST(sent.at("maxPageSize").as_int64() == 25);
  BOOST_TEST(sent.at("productTypes").as_array().size() == 4u);
  // We send ISO 8601 (microseconds intact), not the doc's "\/Date(ms)\/" form.
  BOOST_TEST(sent.at("modifiedAfter").as_string() == "2015-09-22T19:22:51.2068720+00:00");
  BOOST_TEST((parse_store_date(sent.at("modifiedAfter").as_string()) == q.modified_after));
  // The doc's WCF form names the same kind of instant our parser reads back.
  const json::object doc = json::parse(fixture("collections_query_request_v6.json")).as_object();
  BOOST_TEST(parse_store_date(doc.at("modifiedAfter").as_string()).has_value());
  BOOST_TEST(sent.at("continuationToken").as_string() == R"({"checkSatisfactionIndex":2})");
}

// Error bodies come from the same collections and purchase endpoints, so their tests live here.
BOOST_AUTO_TEST_CASE(store_error_bodies) {
  auto e =
      parse_store_error_body(fixture("recurrences_query_error_500_internal_server_error_truncated.json"));
  BOOST_TEST(e.code == "InternalServerError");
  BOOST_TEST(e.inner_code == "UnknownInternalFailure");
  BOOST_TEST(e.message.find("The service has encountered an unknown internal server error") == 0u);

  e = parse_store_error_body(
      R"({"code":"Unauthorized","message":"Access token is invalid.","innererror":{"code":"AuthenticationTokenInvalid","message":"inner"}})");
  BOOST_TEST(e.code == "Unauthorized");
  BOOST_TEST(e.inner_code == "AuthenticationTokenInvalid");
  BOOST_TEST(e.message == "Access token is invalid.");  // the top-level message wins

  e = parse_store_error_body(R"({"error":{"code":"BadRequest","message":"x"}})");
  BOOST_TEST(e.code == "BadRequest");
  BOOST_TEST(e.message == "x");
}

BOOST_AUTO_TEST_CASE(store_error_bodies_of_other_shapes) {
  auto e = parse_store_error_body(fixture("rate_limit_429_body_template.txt"));
  BOOST_TEST(e.code.empty());
  BOOST_TEST(e.inner_code.empty());
  BOOST_TEST(e.message ==
             "The rate limit of {X} operations in {Y} seconds has been exceeded for aspect {Z}.");

  e = parse_store_error_body(fixture("xbox_live_generic_429_throttle_body_example.json"));
  BOOST_TEST(e.code.empty());
  BOOST_TEST(e.message.find("\"limitType\":\"Rate\"") != std::string::npos);
  BOOST_TEST(e.message.find('\n') == std::string::npos);

  BOOST_TEST(parse_store_error_body("").message.empty());
  std::string long_body(1000, 'x');
  BOOST_TEST(parse_store_error_body(long_body).message.size() == 300u);
  BOOST_TEST(parse_store_error_body("a\x01\x1b[31mb\r\nc").message == "a\\x01\\x1b[31mb c");
  // A cut never leaves half a UTF-8 character: 296 ASCII bytes then a 2-byte character that would
  // reach past the 297 bytes left before the cut's mark.
  std::string utf8 = std::string(296, 'x') + "\xC3\xA9" + std::string(10, 'y');
  BOOST_TEST(parse_store_error_body(utf8).message == std::string(296, 'x') + "...");
  auto long_json = parse_store_error_body(R"({"code":"BadRequest","message":")" + long_body + R"("})");
  BOOST_TEST(long_json.message.size() == 300u);
  BOOST_TEST(long_json.code == "BadRequest");
}
