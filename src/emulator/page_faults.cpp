#include "emulator/page_faults.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "emulator/players.hpp"
#include "emulator/store_errors.hpp"
#include "emulator/store_request.hpp"
#include "emulator/store_ticks.hpp"
#include "emulator/subscriptions.hpp"

namespace esd::emulator {

namespace json = boost::json;

namespace {

constexpr std::string_view cycle_a = "emulator-cycle-A";
constexpr std::string_view cycle_b = "emulator-cycle-B";
constexpr std::string_view huge_prefix = "emulator-huge-";

std::string token_of(const http_request& req) {
  const auto body = parse_body_object(req.body());
  const auto* token = body ? string_field(*body, "continuationToken") : nullptr;
  return token ? std::string(*token) : std::string();
}

// One well-formed item of the answer's kind, filled in as the emulator fills a test's items.
json::object template_item(bool recurrences) {
  if (recurrences) {
    subscription_book book;
    book.replace("huge-page", json::array{json::object{{"productId", "9HUGEPAGE001"}}}, now_ticks());
    return book.find("huge-page")->begin()->second;
  }
  player_registry registry;
  player p;
  return registry.upsert(p, json::object{{"itemId", "huge"}, {"productId", "9HUGEPAGE001"}}).fields;
}

// Page n of a huge answer: generated items until the text is about `bytes` long.
json::array huge_items(std::size_t bytes, bool recurrences, long long page) {
  json::object item = template_item(recurrences);
  const char* id_field = recurrences ? "id" : "itemId";
  const std::string base = std::string(item[id_field].as_string());
  const std::size_t each = json::serialize(item).size() + 1;
  json::array items;
  for (std::size_t size = 0, i = 0; size < bytes; size += each, ++i) {
    item[id_field] = base + "-" + std::to_string(page) + "-" + std::to_string(i);
    items.push_back(item);
  }
  return items;
}

}  // namespace

http_response page_fault_answer(const fault_rule& fault, bool recurrences, const http_request& req) {
  const std::string token = token_of(req);
  json::object out;
  if (fault.mode == fault_mode::cycle) {
    out["items"] = json::array{};
    out["continuationToken"] = token == cycle_a ? cycle_b : cycle_a;
  } else {
    long long page = 0;
    if (token.starts_with(huge_prefix)) page = std::stoll(token.substr(huge_prefix.size()));
    out["items"] = huge_items(fault.bytes, recurrences, page);
    // take() hands out the rule as it was before this hit: 1 left means this is its last page.
    if (fault.remaining > 1) out["continuationToken"] = std::string(huge_prefix) + std::to_string(page + 1);
  }
  auto res = json_response(http::status::ok, out);
  add_store_headers(res);
  return res;
}

}  // namespace esd::emulator
