// The purchase API and the consume call: building free-product grants (POST /v6.0/purchases/grant),
// subscription queries (POST /v8.0/b2b/recurrences/query) and consumable fulfilment reports
// (POST /v6.0/collections/consume), and reading their answers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store_date.hpp"

namespace esd::store {

struct grant_request_v6 {
  std::string purchase_key;  // the player's UserPurchaseId, sent as b2bKey
  std::string availability_id, product_id, sku_id;
  std::string language = "en-us", market = "us";
  std::string order_id;  // the idempotency key: the same on every try of one request
  std::optional<std::string> dev_offer_id;
  int quantity = 1;  // sent only when above 1 (the documented request has no quantity)
};

// {"b2bKey":..,"availabilityId":..,"productId":..,"skuId":..,"language":..,"market":..,"orderId":..}
std::string build_grant_request_v6(const grant_request_v6& g);

struct grant_answer {
  std::string order_id, order_state;  // orderState: Purchased, ...
  std::string line_item_id;           // orderLineItems[0].lineItemId, may be empty
  std::string fulfillment_state;      // orderLineItems[0].fulfillmentState, may be empty
};

struct grant_parse_result {
  std::optional<grant_answer> answer;
  std::string error;
  explicit operator bool() const { return answer.has_value(); }
};

// Reads a grant response. An answer without orderId or orderState, or whose orderId is not the one
// sent, is an error: it cannot be the answer to our request.
grant_parse_result parse_grant_response(std::string_view body, std::string_view expected_order_id);

// {"b2bKey":..,"continuationToken":..}
std::string build_recurrences_query(std::string_view purchase_key, const std::optional<std::string>& continuation);

struct recurrence {
  std::string id;             // required
  std::string product_id, sku_id, state, market, beneficiary;
  std::optional<bool> auto_renew, is_trial;
  std::optional<store_time> start_time, expiration_time, expiration_time_with_grace, cancellation_date,
      last_modified;
};

struct recurrences_page {
  std::vector<recurrence> items;
  std::optional<std::string> continuation_token;
};

struct recurrences_parse_result {
  std::optional<recurrences_page> page;
  std::string error;
  explicit operator bool() const { return page.has_value(); }
};

// Reads a recurrences query response: {"items":[...],"continuationToken":..}. An item without id, or a
// present but malformed date, is an error.
recurrences_parse_result parse_recurrences_response(std::string_view body);

// {"beneficiary":{"identityType":"b2b","identityValue":KEY,"localTicketReference":""},"itemId":..,"trackingId":..}
std::string build_consume_request_v6(std::string_view collections_key, std::string_view item_id,
                                     std::string_view tracking_id);

}  // namespace esd::store
