#include "store/purchase.hpp"

#include <boost/json.hpp>

#include "store/json_fields.hpp"

namespace esd::store {
namespace {
namespace json = boost::json;
}

std::string build_grant_request_v6(const grant_request_v6& g) {
  json::object body;
  body["b2bKey"] = g.purchase_key;
  body["availabilityId"] = g.availability_id;
  body["productId"] = g.product_id;
  body["skuId"] = g.sku_id;
  body["language"] = g.language;
  body["market"] = g.market;
  body["orderId"] = g.order_id;
  if (g.dev_offer_id && !g.dev_offer_id->empty()) body["devOfferId"] = *g.dev_offer_id;
  if (g.quantity > 1) body["quantity"] = g.quantity;
  return json::serialize(body);
}

grant_parse_result parse_grant_response(std::string_view body, std::string_view expected_order_id) {
  grant_parse_result r;
  auto doc = parse_json_document(body, r.error);
  if (!doc) return r;
  if (!doc->is_object()) {
    r.error = "the answer is JSON but not an object";
    return r;
  }
  json_fields f(doc->get_object(), "");
  grant_answer a;
  a.order_id = f.required_text("orderId", max_id_bytes);
  a.order_state = f.required_text("orderState", max_id_bytes);
  if (const json::value* lines = f.find("orderLineItems")) {
    if (!lines->is_array()) {
      f.fail("orderLineItems", "is not an array");
    } else if (!lines->get_array().empty()) {
      const json::value& first = lines->get_array()[0];
      if (!first.is_object()) {
        f.fail("orderLineItems", "[0] is not an object");
      } else {
        json_fields line(first.get_object(), "orderLineItems[0]");
        a.line_item_id = line.text("lineItemId", max_id_bytes);
        a.fulfillment_state = line.text("fulfillmentState", max_id_bytes);
        if (!line.ok()) f.fail("orderLineItems", "is malformed (" + line.error() + ")");
      }
    }
  }
  if (!f.ok()) {
    r.error = f.error();
    return r;
  }
  // GUIDs compare without regard to case.
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return out;
  };
  if (lower(a.order_id) != lower(expected_order_id)) {
    r.error = "the answer is for order " + quoted_excerpt(a.order_id, 40) + ", not the one sent";
    return r;
  }
  r.answer = std::move(a);
  return r;
}

std::string build_recurrences_query(std::string_view purchase_key, const std::optional<std::string>& continuation) {
  json::object body;
  body["b2bKey"] = purchase_key;
  if (continuation) body["continuationToken"] = *continuation;
  return json::serialize(body);
}

recurrences_parse_result parse_recurrences_response(std::string_view body) {
  recurrences_parse_result r;
  unsigned char first_block[4096];  // the document's nodes, freed at once (see parse_collections_response)
  json::monotonic_resource arena(first_block, sizeof first_block);
  auto doc = parse_json_document(body, r.error, &arena);
  if (!doc) return r;
  if (!doc->is_object()) {
    r.error = "the answer is JSON but not an object";
    return r;
  }
  json_fields top(doc->get_object(), "");
  const json::value* items = top.find("items");
  if (!items || !items->is_array()) {
    r.error = items ? "\"items\" is not an array" : "the answer has no \"items\" array";
    return r;
  }
  recurrences_page page;
  std::string token = top.text("continuationToken", max_text_bytes);
  if (!top.ok()) {
    r.error = top.error();
    return r;
  }
  if (!token.empty()) page.continuation_token = std::move(token);
  const auto& arr = items->get_array();
  page.items.reserve(arr.size());
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string where = "items[" + std::to_string(i) + "]";
    if (!arr[i].is_object()) {
      r.error = where + " is not an object";
      return r;
    }
    json_fields f(arr[i].get_object(), where);
    recurrence s;
    s.id = f.required_text("id", max_id_bytes);
    s.product_id = f.text("productId", max_id_bytes);
    s.sku_id = f.text("skuId", max_id_bytes);
    s.state = f.text("recurrenceState", max_id_bytes);
    s.market = f.text("market", max_id_bytes);
    s.beneficiary = f.text("beneficiary", max_id_bytes);
    s.auto_renew = f.boolean("autoRenew");
    s.is_trial = f.boolean("isTrial");
    s.start_time = f.date("startTime");
    s.expiration_time = f.date("expirationTime");
    s.expiration_time_with_grace = f.date("expirationTimeWithGrace");
    s.cancellation_date = f.date("cancellationDate");
    s.last_modified = f.date("lastModified");
    if (!f.ok()) {
      r.error = f.error();
      return r;
    }
    page.items.push_back(std::move(s));
  }
  r.page = std::move(page);
  return r;
}

std::string build_consume_request_v6(std::string_view collections_key, std::string_view item_id,
                                     std::string_view tracking_id) {
  json::object beneficiary;
  beneficiary["identityType"] = "b2b";
  beneficiary["identityValue"] = collections_key;
  beneficiary["localTicketReference"] = "";
  json::object body;
  body["beneficiary"] = std::move(beneficiary);
  body["itemId"] = item_id;
  body["trackingId"] = tracking_id;
  return json::serialize(body);
}

}  // namespace esd::store
