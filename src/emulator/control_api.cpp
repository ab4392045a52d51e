#include "emulator/control_api.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <stdexcept>
#include <vector>

namespace esd::emulator {

namespace json = boost::json;

namespace {

http_response error(http::status status, std::string_view message) {
  return json_response(status, json::object{{"error", message}});
}

http_response ok(json::value body) { return json_response(http::status::ok, body); }

std::optional<json::object> parse_object(const http_request& req, std::string& problem) {
  if (req.body().empty()) return json::object{};
  boost::system::error_code ec;
  json::value v = json::parse(req.body(), ec);
  if (ec) {
    problem = "the body is not JSON: " + ec.message();
    return std::nullopt;
  }
  if (!v.is_object()) {
    problem = "the body must be a JSON object";
    return std::nullopt;
  }
  return std::move(v.as_object());
}

// A list body: a bare JSON array, or {"items":[...]}.
std::optional<json::array> parse_list(const http_request& req, std::string& problem) {
  boost::system::error_code ec;
  json::value v = json::parse(req.body(), ec);
  if (ec) {
    problem = "the body is not JSON: " + ec.message();
    return std::nullopt;
  }
  if (v.is_array()) return std::move(v.as_array());
  if (const auto* o = v.if_object())
    if (const auto* items = o->if_contains("items"); items && items->is_array()) return items->as_array();
  problem = "the body must be a JSON array (or {\"items\":[...]})";
  return std::nullopt;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> segments(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = path.find('/');
    out.push_back(percent_decode(path.substr(0, slash)));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  }
  return out;
}

std::optional<std::int64_t> as_int(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double() && v->as_double() > -1e15 && v->as_double() < 1e15)
    return static_cast<std::int64_t>(v->as_double());
  return std::nullopt;
}

http_response method_not_allowed(std::string_view allow) {
  auto res = error(http::status::method_not_allowed, "method not allowed; use " + std::string(allow));
  res.set(http::field::allow, allow);
  return res;
}

}  // namespace

http_response control_api::handle(const http_request& req) {
  const auto parts = segments(target_path(req));  // parts[0] == "_emulator"
  const auto method = req.method();
  const auto is = [&](std::initializer_list<std::string_view> want) {
    if (parts.size() != want.size() + 1) return false;
    std::size_t i = 1;
    for (auto w : want) {
      if (w != "*" && parts[i] != w) return false;
      ++i;
    }
    return true;
  };

  if (is({"keys"})) return method == http::verb::post ? mint_key(req) : method_not_allowed("POST");
  if (is({"players"})) {
    if (method != http::verb::get) return method_not_allowed("GET");
    std::lock_guard lock(state_.mutex);
    json::object out;
    for (const auto& [id, p] : state_.players.all()) out[id] = p.items.size();
    return ok(json::object{{"players", std::move(out)}});
  }
  if (is({"players", "*", "items"})) {
    if (method == http::verb::put || method == http::verb::post) return put_items(req, parts[2]);
    if (method == http::verb::get) return list_items(parts[2]);
    return method_not_allowed("GET, PUT");
  }
  if (is({"players", "*", "subscriptions"})) {
    if (method == http::verb::put || method == http::verb::post) return put_subscriptions(req, parts[2]);
    if (method == http::verb::get) return list_subscriptions(parts[2]);
    return method_not_allowed("GET, PUT");
  }
  if (is({"catalog"})) {
    if (method == http::verb::put || method == http::verb::post) return put_catalog(req);
    if (method != http::verb::get) return method_not_allowed("GET, PUT");
    std::lock_guard lock(state_.mutex);
    return ok(json::object{{"items", state_.catalog.to_json()}});
  }
  if (is({"orders"})) {
    if (method != http::verb::get) return method_not_allowed("GET");
    std::lock_guard lock(state_.mutex);
    json::array orders;
    for (const auto& [key, order] : state_.orders.grants) orders.push_back(order.to_json());
    return ok(json::object{{"orders", std::move(orders)}});
  }
  if (is({"players", "*", "items", "*"}))
    return method == http::verb::post || method == http::verb::patch ? update_item(req, parts[2], parts[4])
                                                                     : method_not_allowed("POST");
  if (is({"faults"})) {
    if (method == http::verb::post) return add_fault(req);
    std::lock_guard lock(state_.mutex);
    if (method == http::verb::delete_) {
      state_.faults.clear();
      return ok(json::object{{"faults", json::array{}}});
    }
    if (method == http::verb::get) return ok(state_.faults.to_json());
    return method_not_allowed("GET, POST, DELETE");
  }
  if (is({"settings"})) {
    return method == http::verb::post || method == http::verb::get || method == http::verb::put
               ? settings(req)
               : method_not_allowed("GET, POST");
  }
  if (is({"tokens"}) || is({"tokens", "revoke"})) {
    if (parts.size() == 3 && method != http::verb::post) return method_not_allowed("POST");
    if (parts.size() == 2 && method != http::verb::get) return method_not_allowed("GET");
    if (parts.size() == 3) entra_.revoke_issued();
    return ok(json::object{{"issued", entra_.issued()},
                           {"revokedThrough", entra_.revoked_through()},
                           {"revokedRefusals", entra_.revoked_refusals()}});
  }
  if (is({"stats"})) {
    if (method != http::verb::get) return method_not_allowed("GET");
    std::lock_guard lock(state_.mutex);
    return ok(state_.stats.to_json());
  }
  if (is({"stats", "reset"})) {
    if (method != http::verb::post) return method_not_allowed("POST");
    std::lock_guard lock(state_.mutex);
    state_.stats = emulator_stats{};
    return ok(state_.stats.to_json());
  }
  return error(http::status::not_found, "no such control endpoint: " + std::string(target_path(req)));
}

http_response control_api::mint_key(const http_request& req) {
  std::string problem;
  const auto body = parse_object(req, problem);
  if (!body) return error(http::status::bad_request, problem);
  const auto* user = body->if_contains("userId");
  if (!user || !user->is_string() || user->as_string().empty())
    return error(http::status::bad_request, "\"userId\" must be a non-empty string");
  store_key_spec spec;
  spec.player_id = std::string(user->as_string());
  const auto* kind = body->if_contains("kind");
  const json::string* kind_text = kind ? kind->if_string() : nullptr;
  if (!kind || kind->is_null() || (kind_text && *kind_text == "collections"))
    spec.kind = store::key_kind::collections;
  else if (kind_text && *kind_text == "purchase")
    spec.kind = store::key_kind::purchase;
  else
    return error(http::status::bad_request, "\"kind\" must be \"collections\" or \"purchase\"");

  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  spec.issued_at = now;
  if (const auto* v = body->if_contains("issuedAt"); v && !v->is_null()) {
    const auto n = as_int(v);
    if (!n) return error(http::status::bad_request, "\"issuedAt\" must be seconds since the epoch");
    spec.issued_at = *n;
  }
  spec.expires_at = spec.issued_at + config_.key_lifetime_seconds;
  if (const auto* v = body->if_contains("expiresAt"); v && !v->is_null()) {
    const auto n = as_int(v);
    if (!n) return error(http::status::bad_request, "\"expiresAt\" must be seconds since the epoch");
    spec.expires_at = *n;
  }
  spec.client_id = config_.client_id;
  if (const auto* v = body->if_contains("clientId"); v && !v->is_null()) {
    if (!v->is_string()) return error(http::status::bad_request, "\"clientId\" must be a string");
    spec.client_id = std::string(v->as_string());
  }
  spec.refresh_uri = config_.refresh_uri();
  if (const auto* v = body->if_contains("refreshUri"); v && !v->is_null()) {
    if (!v->is_string()) return error(http::status::bad_request, "\"refreshUri\" must be a string");
    spec.refresh_uri = std::string(v->as_string());
  }
  {
    std::lock_guard lock(state_.mutex);
    state_.players.ensure(spec.player_id);
  }
  return ok(json::object{{"key", keys_.mint(spec)},
                         {"userId", spec.player_id},
                         {"kind", store::to_string(spec.kind)},
                         {"issuedAt", spec.issued_at},
                         {"expiresAt", spec.expires_at}});
}

http_response control_api::put_items(const http_request& req, const std::string& user_id) {
  std::string problem;
  const auto body = parse_object(req, problem);
  if (!body) return error(http::status::bad_request, problem);
  const auto* items = body->if_contains("items");
  if (!items || !items->is_array())
    return error(http::status::bad_request, "the body must be {\"items\":[...]}");
  for (const auto& item : items->as_array())
    if (!item.is_object()) return error(http::status::bad_request, "every item must be a JSON object");
  std::lock_guard lock(state_.mutex);
  auto& p = state_.players.ensure(user_id);
  json::array ids;
  std::size_t index = 0;
  try {
    for (const auto& item : items->as_array()) {
      ids.push_back(json::value(state_.players.upsert(p, item.as_object()).item_id));
      ++index;
    }
  } catch (const std::invalid_argument& e) {
    return error(http::status::bad_request,
                 "items[" + std::to_string(index) + "]: " + e.what() + " (items before it were stored)");
  }
  return ok(json::object{{"count", ids.size()}, {"itemIds", std::move(ids)}});
}

http_response control_api::update_item(const http_request& req, const std::string& user_id,
                                       const std::string& item_id) {
  std::string problem;
  auto body = parse_object(req, problem);
  if (!body) return error(http::status::bad_request, problem);
  std::lock_guard lock(state_.mutex);
  player* p = state_.players.find(user_id);
  if (!p) return error(http::status::not_found, "no such player: " + user_id);
  if (!p->items.contains(item_id))
    return error(http::status::not_found, "player " + user_id + " has no item " + item_id);
  (*body)["itemId"] = item_id;
  try {
    return ok(state_.players.upsert(*p, *body).fields);
  } catch (const std::invalid_argument& e) {
    return error(http::status::bad_request, e.what());
  }
}

http_response control_api::list_items(const std::string& user_id) {
  std::lock_guard lock(state_.mutex);
  const player* p = state_.players.find(user_id);
  if (!p) return error(http::status::not_found, "no such player: " + user_id);
  json::array items;
  for (const auto& [id, item] : p->items) items.push_back(item.fields);
  return ok(json::object{{"items", std::move(items)}});
}

http_response control_api::put_subscriptions(const http_request& req, const std::string& user_id) {
  std::string problem;
  const auto list = parse_list(req, problem);
  if (!list) return error(http::status::bad_request, problem);
  std::lock_guard lock(state_.mutex);
  try {
    auto ids = state_.subscriptions.replace(user_id, *list, state_.players.fresh_modified_ticks());
    state_.players.ensure(user_id);
    return ok(json::object{{"count", ids.size()}, {"ids", std::move(ids)}});
  } catch (const std::invalid_argument& e) {
    return error(http::status::bad_request, std::string(e.what()) + " (nothing was changed)");
  }
}

http_response control_api::list_subscriptions(const std::string& user_id) {
  std::lock_guard lock(state_.mutex);
  json::array items;
  if (const auto* subs = state_.subscriptions.find(user_id))
    for (const auto& [id, fields] : *subs) items.push_back(fields);
  return ok(json::object{{"items", std::move(items)}});
}

http_response control_api::put_catalog(const http_request& req) {
  std::string problem;
  const auto list = parse_list(req, problem);
  if (!list) return error(http::status::bad_request, problem);
  std::lock_guard lock(state_.mutex);
  try {
    state_.catalog.replace(*list);
  } catch (const std::invalid_argument& e) {
    return error(http::status::bad_request, std::string(e.what()) + " (the catalog was not changed)");
  }
  return ok(json::object{{"items", state_.catalog.to_json()}});
}

http_response control_api::add_fault(const http_request& req) {
  std::string problem;
  const auto body = parse_object(req, problem);
  if (!body) return error(http::status::bad_request, problem);
  auto rule = fault_plan::from_json(*body, problem);
  if (!rule) return error(http::status::bad_request, problem);
  std::lock_guard lock(state_.mutex);
  state_.faults.add(std::move(*rule));
  return ok(state_.faults.to_json());
}

http_response control_api::settings(const http_request& req) {
  std::string problem;
  const auto body = req.method() == http::verb::get ? std::optional<json::object>(json::object{})
                                                    : parse_object(req, problem);
  if (!body) return error(http::status::bad_request, problem);
  std::optional<int> latency;
  if (const auto* v = body->if_contains("latencyMs"); v && !v->is_null()) {
    const auto n = as_int(v);
    if (!n || *n < 0 || *n > 600'000)
      return error(http::status::bad_request, "\"latencyMs\" must be 0..600000");
    latency = static_cast<int>(*n);
  }
  int ops = 0, window = 0;
  const auto* budget = body->if_contains("userBudget");
  if (budget && !budget->is_null() &&
      (!budget->is_string() || !parse_budget(budget->as_string(), ops, window)))
    return error(http::status::bad_request, "\"userBudget\" must be \"N/SECONDS\", e.g. \"200/300\"");
  std::lock_guard lock(state_.mutex);
  if (latency) state_.latency_ms = *latency;
  if (budget && !budget->is_null()) state_.budget.configure(ops, window);
  return ok(json::object{{"latencyMs", state_.latency_ms},
                         {"userBudget", std::to_string(state_.budget.operations()) + "/" +
                                            std::to_string(state_.budget.window_seconds())}});
}

}  // namespace esd::emulator
