#include "emulator/collections_service.hpp"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <vector>

#include "emulator/store_errors.hpp"
#include "emulator/store_request.hpp"
#include "emulator/store_ticks.hpp"

namespace esd::emulator {

namespace json = boost::json;

namespace {

// beneficiaries[0] when it is an object.
const json::object* first_beneficiary(const json::object& body) {
  const auto* b = body.if_contains("beneficiaries");
  if (!b || !b->is_array() || b->as_array().empty()) return nullptr;
  return b->as_array()[0].if_object();
}

const json::string* renew_key_field(const json::object& body) {
  if (const auto* k = string_field(body, "key")) return k;
  return string_field(body, "Key");  // the documented example spells it with a capital K
}

// Where a page starts: after the item with this (modifiedDate, itemId).
struct page_position {
  std::int64_t modified_ticks = 0;
  std::string item_id;
};

std::string encode_position(const store_item& last) {
  return json::serialize(
      json::object{{"lastModifiedDate", format_ticks(last.modified_ticks)}, {"lastItemId", last.item_id}});
}

std::optional<page_position> decode_position(std::string_view token) {
  const auto o = parse_body_object(token);
  if (!o) return std::nullopt;
  const auto* date = string_field(*o, "lastModifiedDate");
  const auto* id = string_field(*o, "lastItemId");
  if (!date || !id) return std::nullopt;
  const auto ticks = parse_ticks(*date);
  if (!ticks) return std::nullopt;
  return page_position{*ticks, std::string(*id)};
}

struct product_sku {
  std::string product_id, sku_id;
};

}  // namespace

std::optional<std::string> store_service::player_of(const http_request& req) const {
  const auto body = parse_body_object(req.body());
  if (!body) return std::nullopt;
  // Where each Store request carries its key: beneficiaries[0] (collections query), beneficiary (consume),
  // b2bKey (grant, recurrences query), key (renewal).
  const json::string* key = nullptr;
  if (const auto* b = first_beneficiary(*body)) key = string_field(*b, "identityValue");
  if (const auto* v = body->if_contains("beneficiary"); !key && v && v->is_object())
    key = string_field(v->as_object(), "identityValue");
  if (!key) key = string_field(*body, "b2bKey");
  if (!key) key = renew_key_field(*body);
  if (!key) return std::nullopt;
  auto spec = keys_.read(*key);
  if (!spec) return std::nullopt;
  return std::move(spec->player_id);
}

http_response store_service::collections_query(const http_request& req) {
  state_.count(&emulator_stats::collections_queries);
  http_response refused_call;
  auto call = auth_.open_post(req, collections_source, refused_call);
  if (!call) return refused_call;
  const std::int64_t now = call->now;
  const access_token_claims& token = call->token;
  const boost::json::object* body = &call->body;
  const auto* beneficiary = first_beneficiary(*body);
  const auto* identity_type = beneficiary ? string_field(*beneficiary, "identityType") : nullptr;
  const auto* identity_value = beneficiary ? string_field(*beneficiary, "identityValue") : nullptr;
  if (!identity_type || !iequals(*identity_type, "b2b") || !identity_value || identity_value->empty())
    return bad_parameter(
        "beneficiaries must hold one UserIdentity with identityType \"b2b\" and identityValue the Microsoft "
        "Store ID "
        "key.");
  const std::string ticket_reference = [&] {
    const auto* r = string_field(*beneficiary, "localTicketReference");
    return r ? std::string(*r) : std::string();
  }();

  const auto key = keys_.read(*identity_value);
  const store::key_kind collections = store::key_kind::collections;
  if (auto failure = auth_.check_store_key(key, now, token, collections_source, &collections))
    return std::move(*failure);
  const std::string& player_id = key->player_id;

  // Parameters.
  int max_page = 100;
  if (const auto* v = body->if_contains("maxPageSize"); v && !v->is_null()) {
    std::int64_t n = -1;
    if (v->is_int64())
      n = v->as_int64();
    else if (v->is_uint64())
      n = v->as_uint64() > 1000 ? 1000 : static_cast<std::int64_t>(v->as_uint64());
    else if (v->is_double() && v->as_double() >= 0 && v->as_double() <= 1000 &&
             v->as_double() == static_cast<double>(static_cast<std::int64_t>(v->as_double())))
      n = static_cast<std::int64_t>(v->as_double());
    if (n < 1 || n > 100) return bad_parameter("maxPageSize must be an integer from 1 to 100.");
    max_page = static_cast<int>(n);
  }
  std::optional<std::string> modified_after_text;
  std::optional<std::int64_t> modified_after;
  if (const auto* v = body->if_contains("modifiedAfter"); v && !v->is_null()) {
    if (!v->is_string()) return bad_parameter("modifiedAfter must be a date string.");
    modified_after_text = std::string(v->as_string());
    modified_after = parse_ticks(*modified_after_text);
    if (!modified_after) return bad_parameter("modifiedAfter is not a valid date.");
  }
  std::vector<std::string> product_types;
  if (const auto* v = body->if_contains("productTypes"); v && !v->is_null()) {
    if (!v->is_array()) return bad_parameter("productTypes must be a list of strings.");
    for (const auto& t : v->as_array()) {
      if (!t.is_string()) return bad_parameter("productTypes must be a list of strings.");
      product_types.emplace_back(t.as_string());
    }
  }
  bool valid_only = false;
  if (const auto* v = body->if_contains("validityType"); v && !v->is_null()) {
    const auto* s = v->if_string();
    if (s && iequals(*s, "Valid"))
      valid_only = true;
    else if (!s || !iequals(*s, "All"))
      return bad_parameter("validityType must be All or Valid.");
  }
  std::vector<product_sku> product_skus;
  if (const auto* v = body->if_contains("productSkuIds"); v && !v->is_null()) {
    if (!v->is_array()) return bad_parameter("productSkuIds must be a list of {productId, skuId}.");
    for (const auto& e : v->as_array()) {
      const auto* o = e.if_object();
      const auto* pid = o ? string_field(*o, "productId") : nullptr;
      if (!pid) return bad_parameter("productSkuIds must be a list of {productId, skuId}.");
      const auto* sku = string_field(*o, "skuId");
      product_skus.push_back({std::string(*pid), sku ? std::string(*sku) : std::string()});
    }
  }
  std::optional<page_position> position;
  if (const auto* v = body->if_contains("continuationToken"); v && !v->is_null()) {
    const auto* s = v->if_string();
    if (!s) return bad_parameter("continuationToken must be a string.");
    if (!s->empty()) {
      position = decode_position(*s);
      if (!position) return bad_parameter("continuationToken is not valid.");
    }
  }

  json::array page;
  std::optional<std::string> next_token;
  {
    std::lock_guard lock(state_.mutex);
    ++state_.stats.queries_by_user[player_id];
    state_.stats.last_modified_after[player_id] = modified_after_text;
    if (const int wait = state_.budget.admit(player_id))
      return rate_limited(state_.budget.operations(), state_.budget.window_seconds(), wait);

    std::vector<const store_item*> matching;
    if (const player* p = state_.players.find(player_id)) {
      const std::int64_t now_t = now_ticks();
      for (const auto& [id, item] : p->items) {
        if (modified_after && item.modified_ticks <= *modified_after) continue;
        if (position &&
            (item.modified_ticks < position->modified_ticks ||
             (item.modified_ticks == position->modified_ticks && item.item_id <= position->item_id)))
          continue;
        const auto* type = string_field(item.fields, "productType");
        if (!product_types.empty() &&
            std::none_of(product_types.begin(), product_types.end(),
                         [&](const std::string& t) { return type && iequals(*type, t); }))
          continue;
        if (valid_only) {
          const auto* status = string_field(item.fields, "status");
          if (!status || *status != "Active" || item.start_ticks >= now_t || item.end_ticks <= now_t)
            continue;
        }
        if (!product_skus.empty()) {
          const auto* pid = string_field(item.fields, "productId");
          const auto* sku = string_field(item.fields, "skuId");
          if (std::none_of(product_skus.begin(), product_skus.end(), [&](const product_sku& ps) {
                return pid && iequals(*pid, ps.product_id) &&
                       (ps.sku_id.empty() || (sku && *sku == ps.sku_id));
              }))
            continue;
        }
        matching.push_back(&item);
      }
    }
    std::sort(matching.begin(), matching.end(), [](const store_item* a, const store_item* b) {
      return a->modified_ticks != b->modified_ticks ? a->modified_ticks < b->modified_ticks
                                                    : a->item_id < b->item_id;
    });
    const std::size_t n = std::min(matching.size(), static_cast<std::size_t>(max_page));
    for (std::size_t i = 0; i < n; ++i) {
      json::object item = matching[i]->fields;
      item["localTicketReference"] = ticket_reference;
      page.push_back(std::move(item));
    }
    if (matching.size() > n) next_token = encode_position(*matching[n - 1]);
    state_.stats.items_served += n;
  }

  json::object out;
  if (next_token) out["continuationToken"] = *next_token;
  out["items"] = std::move(page);
  auto res = json_response(http::status::ok, out);
  add_store_headers(res);
  return res;
}

http_response store_service::renew_key(const http_request& req) {
  state_.count(&emulator_stats::renewals);
  if (req.method() != http::verb::post)
    return store_error(http::status::method_not_allowed, "MethodNotAllowed", "Use POST.");
  const std::int64_t now = now_seconds();
  const auto body = parse_body_object(req.body());
  if (!body) return bad_parameter("The request body must be a JSON object with serviceTicket and key.");
  const auto* old_key = renew_key_field(*body);
  if (!old_key || old_key->empty()) return bad_parameter("The request body must contain the key to renew.");
  const auto key = keys_.read(*old_key);
  const std::string_view source =
      key && key->kind == store::key_kind::purchase ? purchase_source : collections_source;

  // The documented request carries the access token as serviceTicket; an Authorization header also works.
  const auto* ticket = string_field(*body, "serviceTicket");
  const std::string_view token_text =
      ticket && !ticket->empty() ? std::string_view(*ticket) : bearer_token(req);
  access_token_claims token;
  if (auto failure = auth_.check_access_token(token_text, now, source, token)) return std::move(*failure);
  if (auto failure = auth_.check_store_key(key, now, token, source, nullptr)) return std::move(*failure);

  {
    std::lock_guard lock(state_.mutex);
    if (const int wait = state_.budget.admit(key->player_id))
      return rate_limited(state_.budget.operations(), state_.budget.window_seconds(), wait);
  }
  store_key_spec renewed = *key;
  renewed.issued_at = now;
  renewed.expires_at = now + config_.key_lifetime_seconds;
  if (renewed.refresh_uri.empty()) renewed.refresh_uri = config_.refresh_uri();
  const std::string fresh = keys_.mint(renewed);
  state_.count(&emulator_stats::renewals_succeeded);
  auto res = json_response(http::status::ok, json::object{{"key", fresh}});
  add_store_headers(res);
  return res;
}

}  // namespace esd::emulator
