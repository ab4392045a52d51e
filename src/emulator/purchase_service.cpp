#include "emulator/purchase_service.hpp"

#include <openssl/rand.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "emulator/store_errors.hpp"
#include "emulator/store_request.hpp"
#include "emulator/store_ticks.hpp"

namespace esd::emulator {

namespace json = boost::json;

namespace {

// Boost.JSON writes 0.0 as 0E0; the Store (.NET) writes decimals as 0.0. Same number, but the grant
// answer should read like the documented one.
void write_store_json(const json::value& v, std::string& out) {
  switch (v.kind()) {
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string(kv.key()));
        out += ':';
        write_store_json(kv.value(), out);
      }
      out += '}';
      return;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_store_json(e, out);
      }
      out += ']';
      return;
    }
    case json::kind::double_: {
      const double d = v.get_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f", d);
        out += buf;
        return;
      }
      out += json::serialize(v);
      return;
    }
    default:
      out += json::serialize(v);
  }
}

std::int64_t item_quantity(const store_item& item) {
  const auto* q = item.fields.if_contains("quantity");
  if (q && q->is_int64()) return q->as_int64();
  if (q && q->is_uint64()) return static_cast<std::int64_t>(q->as_uint64());
  return 0;
}

// The grant's answer, shaped like the documented example (grant-free-products.md).
json::object grant_answer(const json::object& request, const catalog_product& product,
                          const grant_order& order, const std::string& client_id,
                          const std::string& fulfilled_at, std::int64_t created_ticks) {
  const json::object identity{{"identityType", "pub"}, {"identityValue", order.player_id}};
  json::object line;
  line["availabilityId"] = product.availability_id;
  line["beneficiary"] = identity;
  line["billingState"] = "Charged";
  line["currencyCode"] = "USD";
  line["description"] = product.title;
  if (const auto* offer = string_field(request, "devOfferId")) line["devofferId"] = *offer;
  line["fulfillmentDate"] = fulfilled_at;
  line["fulfillmentState"] = "Fulfilled";
  line["isPIRequired"] = false;
  line["isTaxIncluded"] = true;
  line["lineItemId"] = order.line_item_id;
  line["listPrice"] = 0.0;
  line["payments"] = json::array{};
  line["productId"] = product.product_id;
  line["productType"] = product.product_type;
  line["quantity"] = order.quantity;
  line["retailPrice"] = 0.0;
  line["revenueRecognitionState"] = "None";
  line["skuId"] = product.sku_id;
  line["taxAmount"] = 0.0;
  line["taxType"] = "NoApplicableTaxes";
  line["title"] = product.title;
  line["totalAmount"] = 0.0;

  json::object out;
  out["clientContext"] = json::object{{"client", client_id}};
  out["createdTime"] = order.created_time;
  out["currencyCode"] = "USD";
  out["isPIRequired"] = false;
  out["language"] = request.at("language");
  out["market"] = request.at("market");
  out["orderId"] = order.order_id;
  out["orderLineItems"] = json::array{std::move(line)};
  out["orderState"] = "Purchased";
  out["orderValidityEndTime"] = format_ticks(created_ticks + 86400 * ticks_per_second);
  out["orderValidityStartTime"] = order.created_time;
  out["purchaser"] = identity;
  out["testScenarios"] = "None";
  out["totalAmount"] = 0.0;
  out["totalTaxAmount"] = 0.0;
  return out;
}

}  // namespace

purchase_service::purchase_service(emulator_state& state, const emulator_config& config,
                                   const entra_issuer& entra, const store_key_authority& keys)
    : state_(state), config_(config), auth_(entra, keys) {
  if (RAND_bytes(token_key_.data(), static_cast<int>(token_key_.size())) != 1)
    throw std::runtime_error("cannot draw random bytes for the continuation token key");
}

std::optional<store_key_spec> purchase_service::purchase_key_of(const store_post& call,
                                                               http_response& failure) const {
  const auto* b2b_key = string_field(call.body, "b2bKey");
  if (!b2b_key || b2b_key->empty()) {
    failure = bad_parameter("b2bKey is required: the Microsoft Store ID key (UserPurchaseId) of the user.",
                            purchase_source);
    return std::nullopt;
  }
  return auth_.accept_key(*b2b_key, call.now, call.token, purchase_source, store::key_kind::purchase, failure);
}

http_response purchase_service::grant(const http_request& req) {
  state_.count(&emulator_stats::grant_requests);
  http_response refused_call;
  auto call = auth_.open_post(req, purchase_source, refused_call);
  if (!call) return refused_call;
  const access_token_claims& token = call->token;
  const boost::json::object* body = &call->body;
  const auto key = purchase_key_of(*call, refused_call);
  if (!key) return refused_call;

  for (std::string_view name : {"availabilityId", "productId", "skuId", "language", "market", "orderId"}) {
    const auto* v = string_field(*body, name);
    if (!v || v->empty())
      return bad_parameter(std::string(name) + " is required and must be a non-empty string.",
                           purchase_source);
  }
  const std::string order_id(body->at("orderId").as_string());
  if (!is_guid(order_id))
    return bad_parameter("orderId must be a GUID such as 3eea1529-611e-4aee-915c-345494e4ee76.",
                         purchase_source);
  if (const auto* v = body->if_contains("devOfferId"); v && !v->is_null() && !v->is_string())
    return bad_parameter("devOfferId must be a string.", purchase_source);
  int quantity = 1;
  if (const auto* v = body->if_contains("quantity"); v && !v->is_null()) {
    if (!v->is_int64() && !v->is_uint64())
      return bad_parameter("quantity must be an integer.", purchase_source);
    if (v->is_int64() && v->as_int64() < 1)
      return bad_parameter("quantity must be at least 1.", purchase_source);
    // grant-free-products.md: "Currently, the only supported value is 1."
    if (v->is_uint64() || v->as_int64() != 1)
      return bad_parameter("quantity: the only supported value is 1.", purchase_source);
  }
  const std::string product_id(body->at("productId").as_string());
  const std::string sku_id(body->at("skuId").as_string());
  const std::string availability_id(body->at("availabilityId").as_string());
  const std::string& player_id = key->player_id;

  std::string answer;
  {
    std::lock_guard lock(state_.mutex);
    if (const int wait = state_.budget.admit(player_id))
      return rate_limited(state_.budget.operations(), state_.budget.window_seconds(), wait);

    // orderId is the idempotency key, unique per user (grant-free-products.md).
    const auto order_key = std::make_pair(player_id, lowercase(order_id));
    if (const auto it = state_.orders.grants.find(order_key); it != state_.orders.grants.end()) {
      const grant_order& earlier = it->second;
      if (!iequals(earlier.product_id, product_id) || !iequals(earlier.sku_id, sku_id) ||
          !iequals(earlier.availability_id, availability_id) || earlier.quantity != quantity) {
        ++state_.stats.grant_conflicts;
        return store_error(http::status::conflict, "Conflict",
                           "orderId " + order_id + " was already used by this user for productId " +
                               earlier.product_id + ", skuId " + earlier.sku_id + ", availabilityId " +
                               earlier.availability_id + "; a new order needs a new orderId.",
                           purchase_source);
      }
      ++state_.stats.grant_replays;
      answer = earlier.response_body;
    } else {
      const catalog_product* product = state_.catalog.find(product_id, sku_id, availability_id);
      if (!product) {
        const auto field = state_.catalog.first_mismatch(product_id, sku_id);
        return bad_parameter(std::string(field) + ": there is no free product " + product_id + "/" + sku_id +
                                 "/" + availability_id + " (productId/skuId/availabilityId) in the catalog.",
                             purchase_source);
      }
      player& p = state_.players.ensure(player_id);
      const bool consumable = is_consumable(product->product_type);
      json::object change{{"productId", product->product_id},
                          {"skuId", product->sku_id},
                          {"productType", product->product_type},
                          {"acquisitionType", "Single"},
                          {"status", "Active"},
                          {"orderId", order_id},
                          {"transactionId", order_id},
                          {"quantity", quantity}};
      if (const auto* offer = string_field(*body, "devOfferId")) change["devOfferId"] = *offer;
      // The player's item for this product and SKU, when there is one: it changes rather than a second
      // appearing; a consumable still unconsumed gains the quantity.
      for (const auto& [id, item] : p.items) {
        const auto* pid = string_field(item.fields, "productId");
        const auto* sku = string_field(item.fields, "skuId");
        if (!pid || !sku || !iequals(*pid, product->product_id) || !iequals(*sku, product->sku_id)) continue;
        change["itemId"] = id;
        const auto* status = string_field(item.fields, "status");
        if (consumable && status && *status == "Active") change["quantity"] = item_quantity(item) + quantity;
        break;
      }
      const std::int64_t created_ticks = now_ticks();
      const store_item& item = state_.players.upsert(p, change);

      grant_order order;
      order.player_id = player_id;
      order.order_id = order_id;
      order.product_id = product->product_id;
      order.sku_id = product->sku_id;
      order.availability_id = product->availability_id;
      order.quantity = quantity;
      order.item_id = item.item_id;
      order.line_item_id = random_guid();
      order.created_time = format_ticks(created_ticks);
      write_store_json(grant_answer(*body, *product, order, token.app_id, format_ticks(item.modified_ticks),
                                    created_ticks),
                       order.response_body);
      answer = order.response_body;
      state_.orders.grants.emplace(order_key, std::move(order));
      ++state_.stats.grants_performed;
    }
  }
  auto res = json_text_response(http::status::ok, std::move(answer));
  add_store_headers(res);
  return res;
}

}  // namespace esd::emulator
