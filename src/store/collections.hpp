// The collections API: building v6 queries and reading v6, v8 and v9 answers into one item shape.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store_date.hpp"

namespace esd::store {

// One entitlement as the Store reports it, normalized across v6 (itemId, productType) and
// v8/v9 (id, productKind). Unknown JSON keys are ignored; absent optional fields stay empty.
struct collection_item {
  std::string item_id;       // v6 itemId, v8/v9 id (required)
  std::string product_id;    // required
  std::string sku_id;        // may be empty
  std::string product_type;  // v6 productType, v8/v9 productKind
  std::string status;        // Active, Expired, Revoked, Banned, Suspended (required)
  std::optional<std::int32_t> quantity;
  std::optional<store_time> acquired_date, start_date, end_date;
  store_time modified_date;  // required: the watermark is built from it
  std::string transaction_id, order_id, order_line_item_id, dev_offer_id, in_app_offer_token;
  std::string ownership_type, sku_type, purchased_country, acquisition_type, local_ticket_reference;
  std::string purchaser_identity_type, purchaser_identity_value;  // v6 purchaser
  std::string recurrence_id;  // v9 recurrenceId, or recurrenceData when it is a string (Game Pass)
  std::vector<std::string> tags, fulfillment_data, satisfied_by_product_ids;
  std::optional<bool> is_trial, is_in_trial_period;                 // trialData (v8/v9) or isTrial (v6)
  std::optional<std::int64_t> trial_time_remaining_micros;          // trialData.trialTimeRemaining
};

// An item refused alone: a value the database cannot hold or beyond its bound (README, "What is
// recorded"). The rest of the page is kept; the watermark must stay before the item so that the next sync
// reads it again.
struct refused_item {
  std::string reason;  // names the item and the field: "items[3] (item \"x\"): productId is 15728640 bytes..."
  store_time modified_date;
};

struct collections_page {
  std::vector<collection_item> items;
  std::vector<refused_item> refused;
  std::optional<std::string> continuation_token;  // absent or empty string -> nullopt (last page)
};

struct collections_parse_result {
  std::optional<collections_page> page;
  std::string error;  // what makes no sense in the answer, e.g. "item 3: modifiedDate is not a date"
  explicit operator bool() const { return page.has_value(); }
};

// Reads a collections query response body (any of v6, v8, v9). A body that is not JSON, has no
// "items" array, or has an item without item id, product id, status or a valid modifiedDate is an error.
// An item that is well formed but holds a value refused by its bound (a NUL, text over max_id_bytes or
// max_text_bytes, a negative or out-of-range quantity) goes to `refused` instead of `items`.
// Dates must parse with parse_store_date; a present but malformed date is an error.
collections_parse_result parse_collections_response(std::string_view body);

struct collections_query_v6 {
  std::string_view collections_key;  // the player's UserCollectionsId, sent as beneficiaries[0].identityValue
  std::optional<store_time> modified_after;  // omitted when absent (first or full sync)
  std::vector<std::string> product_types;    // e.g. Application, Durable, Game, UnmanagedConsumable
  std::string validity_type = "All";
  int max_page_size = 100;
  std::optional<std::string> continuation_token;
};

// The JSON body for POST /v6.0/collections/query:
// {"beneficiaries":[{"identityType":"b2b","identityValue":KEY,"localTicketReference":""}],
//  "maxPageSize":N,"modifiedAfter":"<format_store_date>","productTypes":[...],"validityType":"All",
//  "continuationToken":"..."}
std::string build_collections_query_v6(const collections_query_v6& q);

}  // namespace esd::store
