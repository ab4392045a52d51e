#include "store/collections.hpp"

#include <boost/json.hpp>

#include "store/json_fields.hpp"

namespace esd::store {
namespace {

namespace json = boost::json;

// Reads one element of "items"; on failure returns nullopt and sets error (naming items[index]), or, for a
// well-formed item with a value refused by its bound, fills `refused` instead.
std::optional<collection_item> read_item(const json::value& v, std::size_t index, std::string& error,
                                         std::optional<refused_item>& refused) {
  const std::string where = "items[" + std::to_string(index) + "]";
  if (!v.is_object()) {
    error = where + " is not an object";
    return std::nullopt;
  }
  json_fields f(v.get_object(), where);
  collection_item item;

  // v6 names the item "itemId", v8/v9 "id"; the same holds for productType/productKind.
  if (!f.find("id") && !f.find("itemId")) f.fail("id", "is missing (itemId in v6)");
  item.item_id = f.required_text(f.find("id") ? "id" : "itemId", max_id_bytes);
  item.product_id = f.required_text("productId", max_id_bytes);
  item.status = f.required_text("status", max_id_bytes);
  const auto modified = f.required_date("modifiedDate");
  item.modified_date = modified.value_or(store_time{});
  item.product_type = f.text(f.find("productKind") ? "productKind" : "productType", max_id_bytes);
  item.sku_id = f.text("skuId", max_id_bytes);
  item.quantity = f.non_negative_int32("quantity");
  item.acquired_date = f.date("acquiredDate");
  item.start_date = f.date("startDate");
  item.end_date = f.date("endDate");

  item.transaction_id = f.text("transactionId", max_id_bytes);
  item.order_id = f.text("orderId", max_id_bytes);
  item.order_line_item_id = f.text("orderLineItemId", max_id_bytes);
  item.dev_offer_id = f.text("devOfferId", max_id_bytes);
  item.in_app_offer_token = f.text("inAppOfferToken", max_text_bytes);
  item.ownership_type = f.text("ownershipType", max_id_bytes);
  item.sku_type = f.text("skuType", max_id_bytes);
  item.purchased_country = f.text("purchasedCountry", max_id_bytes);
  item.acquisition_type = f.text("acquisitionType", max_id_bytes);
  item.local_ticket_reference = f.text("localTicketReference", max_text_bytes);
  item.tags = f.texts("tags");
  item.fulfillment_data = f.texts("fulfillmentData");
  item.satisfied_by_product_ids = f.texts("satisfiedByProductIds", max_id_bytes);

  if (const json::object* purchaser = f.object("purchaser")) {
    json_fields p(*purchaser, where + ".purchaser");
    item.purchaser_identity_type = p.text("identityType", max_id_bytes);
    item.purchaser_identity_value = p.text("identityValue", max_id_bytes);
    if (!p.ok() && p.value_refused()) f.refuse("purchaser", "is refused (" + p.error() + ")");
    if (!p.ok()) f.fail("purchaser", "is malformed (" + p.error() + ")");
  }

  // v9 has "recurrenceId"; the Game Pass doc's v9 answer puts the same id in "recurrenceData" as a
  // string, while v8 sends "recurrenceData" as an (often empty) object, which carries no id.
  item.recurrence_id = f.text("recurrenceId", max_id_bytes);
  if (const json::value* rd = f.find("recurrenceData"); rd && rd->is_string() && item.recurrence_id.empty())
    item.recurrence_id = f.text("recurrenceData", max_id_bytes);

  item.is_trial = f.boolean("isTrial");  // v6
  if (const json::object* trial = f.object("trialData")) {
    json_fields t(*trial, where + ".trialData");
    if (auto b = t.boolean("isTrial")) item.is_trial = b;
    item.is_in_trial_period = t.boolean("isInTrialPeriod");
    item.trial_time_remaining_micros = t.timespan_micros("trialTimeRemaining");
    if (!t.ok()) {
      error = t.error();
      return std::nullopt;
    }
  }

  if (!f.ok()) {
    // Refused alone only when it can be placed: its modifiedDate holds the watermark before it.
    if (f.value_refused() && modified) {
      std::string id = item.item_id.empty() ? std::string() : " (item " + quoted_excerpt(item.item_id, 64) + ")";
      refused = refused_item{f.error() + id, *modified};
    } else {
      error = f.error();
    }
    return std::nullopt;
  }
  return item;
}

}  // namespace

collections_parse_result parse_collections_response(std::string_view body) {
  collections_parse_result result;
  // The document lives only while the items are read out of it: its nodes go to one arena, freed at once,
  // instead of one heap allocation each.
  unsigned char first_block[8192];
  json::monotonic_resource arena(first_block, sizeof first_block);
  auto doc = parse_json_document(body, result.error, &arena);
  if (!doc) return result;
  if (!doc->is_object()) {
    result.error = "the answer is JSON but not an object";
    return result;
  }
  json_fields top(doc->get_object(), "");
  const json::value* items = top.find("items");
  if (!items || !items->is_array()) {
    result.error = items ? "\"items\" is not an array" : "the answer has no \"items\" array";
    return result;
  }

  collections_page page;
  std::string token = top.text("continuationToken", max_text_bytes);
  if (!top.ok()) {
    result.error = top.error();
    return result;
  }
  if (!token.empty()) page.continuation_token = std::move(token);

  page.items.reserve(items->get_array().size());
  for (std::size_t i = 0; i < items->get_array().size(); ++i) {
    std::optional<refused_item> refused;
    auto item = read_item(items->get_array()[i], i, result.error, refused);
    if (refused) {
      page.refused.push_back(std::move(*refused));
      continue;
    }
    if (!item) return result;
    page.items.push_back(std::move(*item));
  }
  result.page = std::move(page);
  return result;
}

std::string build_collections_query_v6(const collections_query_v6& q) {
  json::object beneficiary;
  beneficiary["identityType"] = "b2b";
  beneficiary["identityValue"] = q.collections_key;
  beneficiary["localTicketReference"] = "";

  json::object body;
  body["beneficiaries"] = json::array{std::move(beneficiary)};
  body["maxPageSize"] = q.max_page_size;
  // ISO 8601 rather than the "\/Date(ms)\/" form the doc's example uses: the service accepts both,
  // and ISO keeps the microseconds of our watermark.
  if (q.modified_after) body["modifiedAfter"] = format_store_date(*q.modified_after);
  json::array types;
  for (const auto& t : q.product_types) types.emplace_back(t);
  body["productTypes"] = std::move(types);
  body["validityType"] = q.validity_type;
  if (q.continuation_token) body["continuationToken"] = *q.continuation_token;
  return json::serialize(body);
}

}  // namespace esd::store
