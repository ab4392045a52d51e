#include "emulator/consume_service.hpp"

#include <boost/json/object.hpp>
#include <cctype>
#include <string>

#include "emulator/catalog.hpp"
#include "emulator/store_errors.hpp"
#include "emulator/store_request.hpp"

namespace esd::emulator {

namespace json = boost::json;

namespace {

std::int64_t quantity_of(const store_item& item) {
  const auto* q = item.fields.if_contains("quantity");
  if (q && q->is_int64()) return q->as_int64();
  if (q && q->is_uint64()) return static_cast<std::int64_t>(q->as_uint64());
  return 0;
}

bool has_product(const store_item& item, std::string_view product_id) {
  const auto* pid = string_field(item.fields, "productId");
  return pid && iequals(*pid, product_id);
}

// The player's item for a productId: one with something left to consume when there is one.
const store_item* item_for_product(const player& p, std::string_view product_id) {
  const store_item* found = nullptr;
  for (const auto& [id, item] : p.items) {
    if (!has_product(item, product_id)) continue;
    const auto* type = string_field(item.fields, "productType");
    const auto* status = string_field(item.fields, "status");
    if (type && is_consumable(*type) && status && *status == "Active" && quantity_of(item) >= 1) return &item;
    if (!found) found = &item;
  }
  return found;
}

}  // namespace

http_response consume_service::consume(const http_request& req) {
  state_.count(&emulator_stats::consume_requests);
  http_response refused_call;
  auto call = auth_.open_post(req, collections_source, refused_call);
  if (!call) return refused_call;
  const std::int64_t now = call->now;
  const access_token_claims& token = call->token;
  const boost::json::object* body = &call->body;

  const auto* beneficiary_value = body->if_contains("beneficiary");
  const auto* beneficiary = beneficiary_value ? beneficiary_value->if_object() : nullptr;
  const json::string* identity_type = nullptr;
  const json::string* identity_value = nullptr;
  if (beneficiary) {
    identity_type = string_field(*beneficiary, "identityType");
    // The documented productId example spells it "identitytype".
    if (!identity_type) identity_type = string_field(*beneficiary, "identitytype");
    identity_value = string_field(*beneficiary, "identityValue");
  }
  if (!identity_type || !iequals(*identity_type, "b2b") || !identity_value || identity_value->empty())
    return bad_parameter(
        "beneficiary must be a UserIdentity with identityType \"b2b\" and identityValue the Microsoft Store "
        "ID "
        "key (UserCollectionsId).");
  http_response refused;
  const auto key = auth_.accept_key(*identity_value, now, token, collections_source,
                                    store::key_kind::collections, refused);
  if (!key) return refused;
  const std::string& player_id = key->player_id;

  // itemId + trackingId, or productId + transactionId (which then serves as the tracking id).
  const std::string item_id = string_or_empty(*body, "itemId");
  const std::string product_id = item_id.empty() ? string_or_empty(*body, "productId") : std::string();
  std::string tracking_id;
  if (!item_id.empty()) {
    tracking_id = string_or_empty(*body, "trackingId");
    if (tracking_id.empty()) return bad_parameter("trackingId is required with itemId.");
    if (!is_guid(tracking_id)) return bad_parameter("trackingId must be a GUID.");
  } else if (!product_id.empty()) {
    tracking_id = string_or_empty(*body, "transactionId");
    if (tracking_id.empty()) return bad_parameter("transactionId is required with productId.");
    if (!is_guid(tracking_id)) return bad_parameter("transactionId must be a GUID.");
  } else {
    return bad_parameter("itemId (with trackingId) or productId (with transactionId) is required.");
  }
  const std::string what = item_id.empty() ? "product " + product_id : "item " + item_id;

  {
    std::lock_guard lock(state_.mutex);
    if (const int wait = state_.budget.admit(player_id))
      return rate_limited(state_.budget.operations(), state_.budget.window_seconds(), wait);
    player* p = state_.players.find(player_id);
    const auto tracking_key = std::make_pair(player_id, lowercase(tracking_id));

    // The same tracking id again: the same answer, nothing consumed twice.
    if (const auto it = state_.orders.consumes.find(tracking_key); it != state_.orders.consumes.end()) {
      const store_item* earlier = nullptr;
      if (p)
        if (const auto item = p->items.find(it->second.item_id); item != p->items.end())
          earlier = &item->second;
      const bool same =
          item_id.empty() ? earlier && has_product(*earlier, product_id) : it->second.item_id == item_id;
      if (!same)
        return store_error(
            http::status::conflict, "Conflict",
            "The tracking id " + tracking_id +
                " was already used to consume another item; a new consume needs a new tracking "
                "id.");
      ++state_.stats.consume_replays;
    } else {
      const store_item* item = nullptr;
      if (p && !item_id.empty()) {
        if (const auto it = p->items.find(item_id); it != p->items.end()) item = &it->second;
      } else if (p) {
        item = item_for_product(*p, product_id);
      }
      if (!item)
        return store_error(http::status::not_found, "NotFound", "The user does not own " + what + ".");
      const auto* type = string_field(item->fields, "productType");
      if (!type || !is_consumable(*type))
        return store_error(http::status::bad_request, "NotConsumable",
                           "The " + what + " is a " + (type ? std::string(*type) : std::string("product")) +
                               ", not a consumable (UnmanagedConsumable or Consumable).");
      const auto* status = string_field(item->fields, "status");
      if (!status || *status != "Active" || quantity_of(*item) < 1)
        return store_error(http::status::bad_request, "InsufficientQuantity",
                           "The " + what + " has nothing left to consume (status " +
                               (status ? std::string(*status) : std::string("unknown")) + ", quantity " +
                               std::to_string(quantity_of(*item)) + "); it may already be fulfilled.");
      const std::string consumed_id = item->item_id;
      // Fulfilled: nothing left, and (as the service's owners describe it in MicrosoftDocs/windows-dev-docs
      // issue 372) a fulfilled consumable shows as Expired. modifiedDate moves, so a watermark sees it.
      state_.players.upsert(*p,
                            json::object{{"itemId", consumed_id}, {"quantity", 0}, {"status", "Expired"}});
      state_.orders.consumes.emplace(tracking_key, consume_record{consumed_id});
      ++state_.stats.consumes_performed;
    }
  }
  auto res = no_content_response();
  add_store_headers(res);
  return res;
}

}  // namespace esd::emulator
