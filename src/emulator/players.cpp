#include "emulator/players.hpp"

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "emulator/http_types.hpp"
#include "emulator/store_request.hpp"
#include "emulator/store_ticks.hpp"

namespace esd::emulator {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 4> date_fields = {"acquiredDate", "endDate", "modifiedDate",
                                                         "startDate"};
constexpr std::array<std::string_view, 12> string_fields = {
    "devOfferId", "inAppOfferToken", "itemId",    "localTicketReference",
    "orderId",    "ownershipType",   "productId", "productType",
    "skuId",      "skuType",         "status",    "transactionId"};

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string random_hex(std::size_t n, std::mt19937_64& rng) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += hex[rng() & 15];
  return s;
}

// A Store ID like 9NBLGGH5WVP6: "9", then 11 upper-case letters and digits.
std::string store_product_id(std::mt19937_64& rng) {
  static constexpr char alphabet[] = "0123456789BCDFGHJKLMNPQRSTVWXZ";
  std::string s = "9";
  for (int i = 0; i < 11; ++i) s += alphabet[rng() % (sizeof alphabet - 1)];
  return s;
}

std::mt19937_64& shared_rng() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

void set_if_missing(json::object& o, std::string_view key, json::value v) {
  if (!o.contains(key)) o[key] = std::move(v);
}

void set_if_missing(json::object& o, std::string_view key, const std::string& v) {
  if (!o.contains(key)) o[key] = v;
}

void set_if_missing(json::object& o, std::string_view key, const char* v) {
  if (!o.contains(key)) o[key] = v;
}

void fill_defaults(json::object& o, const std::string& user_id) {
  auto& rng = shared_rng();
  set_if_missing(o, "acquiredDate", o.at("modifiedDate"));
  set_if_missing(o, "startDate", o.at("acquiredDate"));
  set_if_missing(o, "endDate", format_ticks(no_end_ticks));
  set_if_missing(o, "productId", store_product_id(rng));
  set_if_missing(o, "skuId", "0010");
  set_if_missing(o, "productType", "Durable");
  set_if_missing(o, "status", "Active");
  set_if_missing(o, "devOfferId", random_guid());
  set_if_missing(o, "fulfillmentData", json::array{});
  if (!o.contains("inAppOfferToken")) {
    const auto* p = o.at("productId").if_string();
    o["inAppOfferToken"] = "offer-" + lowercase(p ? std::string_view(*p) : std::string_view());
  }
  set_if_missing(o, "localTicketReference", "");
  set_if_missing(o, "orderId", random_guid());
  set_if_missing(o, "transactionId", o.at("orderId"));
  set_if_missing(o, "ownershipType", "OwnedByBeneficiary");
  set_if_missing(o, "purchaser", json::object{{"identityType", "pub"}, {"identityValue", user_id}});
  set_if_missing(o, "skuType", "Full");
  set_if_missing(o, "tags", json::array{});
  set_if_missing(o, "quantity", 1);
}

// Checks the types of the known fields and rewrites dates in the Store's 7-digit form.
void normalize(json::object& o, store_item& out) {
  for (auto name : string_fields)
    if (!o.at(name).is_string()) throw std::invalid_argument(std::string(name) + " must be a string");
  if (o.at("itemId").as_string().empty()) throw std::invalid_argument("itemId must not be empty");
  for (auto name : date_fields) {
    const auto* s = o.at(name).if_string();
    const auto ticks = s ? parse_ticks(*s) : std::nullopt;
    if (!ticks)
      throw std::invalid_argument(std::string(name) +
                                  " must be a Store date such as 2015-09-22T19:22:51.2068724+00:00");
    o[name] = format_ticks(*ticks);
    if (name == "modifiedDate") out.modified_ticks = *ticks;
    if (name == "startDate") out.start_ticks = *ticks;
    if (name == "endDate") out.end_ticks = *ticks;
  }
  const auto& q = o.at("quantity");
  if (!q.is_int64() && !q.is_uint64()) throw std::invalid_argument("quantity must be an integer");
  for (auto name : {"tags", "fulfillmentData"})
    if (!o.at(name).is_array()) throw std::invalid_argument(std::string(name) + " must be an array");
  if (!o.at("purchaser").is_object()) throw std::invalid_argument("purchaser must be an object");

  std::vector<std::string_view> keys;
  for (const auto& kv : o) keys.push_back(kv.key());
  std::sort(keys.begin(), keys.end());
  json::object sorted;
  for (auto k : keys) sorted[k] = o.at(k);
  out.item_id = std::string(o.at("itemId").as_string());
  out.fields = std::move(sorted);
}

}  // namespace

player_registry::player_registry() = default;

player& player_registry::ensure(const std::string& user_id) {
  auto [it, inserted] = players_.try_emplace(user_id);
  if (inserted) it->second.user_id = user_id;
  return it->second;
}

player* player_registry::find(const std::string& user_id) {
  const auto it = players_.find(user_id);
  return it == players_.end() ? nullptr : &it->second;
}

std::int64_t player_registry::fresh_modified_ticks() {
  last_stamp_ = std::max(now_ticks(), last_stamp_ + 1);
  return last_stamp_;
}

const store_item& player_registry::upsert(player& p, const json::object& item) {
  std::string item_id;
  if (const auto* v = item.if_contains("itemId")) {
    if (!v->is_string() || v->as_string().empty())
      throw std::invalid_argument("itemId must be a non-empty string");
    item_id = std::string(v->as_string());
  } else {
    item_id = random_hex(32, shared_rng());
  }
  json::object merged;
  if (const auto it = p.items.find(item_id); it != p.items.end()) merged = it->second.fields;
  for (const auto& kv : item) {
    if (kv.value().is_null())
      merged.erase(kv.key());  // null: back to the generated default
    else
      merged[kv.key()] = kv.value();
  }
  merged["itemId"] = item_id;
  if (!item.contains("modifiedDate") || item.at("modifiedDate").is_null())
    merged["modifiedDate"] = format_ticks(fresh_modified_ticks());
  fill_defaults(merged, p.user_id);
  store_item normalized;
  normalize(merged, normalized);
  auto& slot = p.items[item_id];
  slot = std::move(normalized);
  return slot;
}

void player_registry::load_seed(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the seed file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  json::value doc = json::parse(ss.str(), ec);
  if (ec) throw std::runtime_error("seed file " + path + " is not JSON: " + ec.message());
  const auto* root = doc.if_object();
  const auto* list = root ? root->if_contains("players") : nullptr;
  if (!list || !list->is_array())
    throw std::runtime_error("seed file " + path +
                             " must be {\"players\":[{\"userId\":...,\"items\":[...]}]}");
  std::size_t index = 0;
  for (const auto& entry : list->as_array()) {
    const std::string where = "seed file " + path + ", players[" + std::to_string(index++) + "]";
    const auto* o = entry.if_object();
    const auto* uid = o ? o->if_contains("userId") : nullptr;
    if (!uid || !uid->is_string() || uid->as_string().empty())
      throw std::runtime_error(where + ": userId must be a non-empty string");
    auto& p = ensure(std::string(uid->as_string()));
    const auto* items = o->if_contains("items");
    if (!items) continue;
    if (!items->is_array()) throw std::runtime_error(where + ": items must be an array");
    std::size_t i = 0;
    for (const auto& item : items->as_array()) {
      if (!item.is_object())
        throw std::runtime_error(where + ".items[" + std::to_string(i) + "] must be an object");
      try {
        upsert(p, item.as_object());
      } catch (const std::invalid_argument& e) {
        throw std::runtime_error(where + ".items[" + std::to_string(i) + "]: " + e.what());
      }
      ++i;
    }
  }
}

void player_registry::generate(int count, int items_per_player, const std::string& prefix) {
  static constexpr std::array<std::string_view, 4> types = {"Durable", "Game", "UnmanagedConsumable",
                                                            "Application"};
  constexpr std::int64_t day = 86400 * ticks_per_second;
  const std::int64_t now = now_ticks();
  for (int n = 1; n <= count; ++n) {
    const std::string user_id = prefix + std::to_string(n);
    auto& p = ensure(user_id);
    std::mt19937_64 rng(fnv1a(user_id));
    // A catalog of distinct products, shared by every generated player, as one game's add-ons would be.
    std::mt19937_64 catalog(fnv1a("catalog"));
    // Modified dates rise with the item index, a few minutes apart, ending shortly before now.
    std::int64_t modified = now - static_cast<std::int64_t>(items_per_player + 1) * 600 * ticks_per_second;
    for (int j = 0; j < items_per_player; ++j) {
      const std::string product_id = store_product_id(catalog);
      const std::string_view type = types[static_cast<std::size_t>(j + n) % types.size()];
      modified += 60 * ticks_per_second + static_cast<std::int64_t>(rng() % (500 * ticks_per_second)) + 1;
      const std::int64_t acquired = modified - static_cast<std::int64_t>(rng() % (400 * day));
      std::int64_t end = no_end_ticks;
      std::string status = "Active";
      if (j % 7 == 5) {  // a time-limited item that has run out
        status = "Expired";
        end = acquired + 30 * day;
        if (end >= now) end = now - day;
      } else if (j % 7 == 3) {  // a time-limited item still running
        end = now + static_cast<std::int64_t>(1 + rng() % 300) * day;
      } else if (j % 23 == 11) {
        status = "Revoked";
      }
      const std::string order = random_hex(8, rng) + "-" + random_hex(4, rng) + "-4" + random_hex(3, rng) +
                                "-a" + random_hex(3, rng) + "-" + random_hex(12, rng);
      const std::string token = lowercase(type);
      json::object item{{"itemId", random_hex(32, rng)},
                        {"productId", product_id},
                        {"skuId", "0010"},
                        {"productType", type},
                        {"status", status},
                        {"acquiredDate", format_ticks(acquired)},
                        {"startDate", format_ticks(acquired)},
                        {"endDate", format_ticks(end)},
                        {"modifiedDate", format_ticks(modified)},
                        {"orderId", order},
                        {"transactionId", order},
                        {"inAppOfferToken", token + std::to_string(j + 1)},
                        {"quantity", 1}};
      upsert(p, item);
    }
  }
}

}  // namespace esd::emulator
