// Fuzzes the collections answer parser (src/store/collections.hpp, with json_fields.cpp underneath):
// parse_collections_response on the input as a response body.
//
// Invariants checked (each is promised by collections.hpp or json_fields.hpp):
// - a failed parse says why: a non-empty error;
// - an error carries no control characters (untrusted text is quoted with store::excerpt, because
//   messages go to the journal);
// - a parsed page has one item or one refused item per element of "items" (an item that cannot be read
//   is an error, an item with a value refused by its bound is refused with a reason, never skipped), and
//   every item has the required item id, product id and status (non-empty), no NUL in its texts, and
//   ids within max_id_bytes; a refused item's reason carries no control characters;
// - a continuation token is absent or non-empty;
// - the page's continuation token and an item's modifiedDate go back into the next query intact:
//   build_collections_query_v6 writes JSON that holds the same token and a modifiedAfter that parses
//   to the same instant (for instants the Store's date form can write: year 1 on).
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "store/collections.hpp"
#include "store/json_fields.hpp"

namespace {

namespace json = boost::json;
using namespace esd::store;

constexpr std::int64_t year_one = -62'135'596'800'000'000LL;  // 0001-01-01T00:00:00Z

std::size_t json_items_count(std::string_view body) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  FUZZ_CHECK(!ec && v.is_object());
  const json::value* items = v.get_object().if_contains("items");
  FUZZ_CHECK(items && items->is_array());
  return items->get_array().size();
}

void check_next_query(const collections_page& page) {
  collections_query_v6 q;
  q.collections_key = "fuzz";
  q.continuation_token = page.continuation_token;
  std::optional<store_time> after;
  for (const auto& item : page.items)
    if (item.modified_date.is_infinity() || item.modified_date.micros >= year_one) after = item.modified_date;
  q.modified_after = after;

  const std::string body = build_collections_query_v6(q);
  json::error_code ec;
  json::value v = json::parse(body, ec);
  FUZZ_CHECK_MSG(!ec && v.is_object(), body);
  const json::object& o = v.get_object();
  if (page.continuation_token) {
    const json::value* t = o.if_contains("continuationToken");
    FUZZ_CHECK(t && t->is_string() && t->get_string() == *page.continuation_token);
  } else {
    FUZZ_CHECK(!o.contains("continuationToken"));
  }
  if (after) {
    const json::value* m = o.if_contains("modifiedAfter");
    FUZZ_CHECK(m && m->is_string());
    auto back = parse_store_date(m->get_string());
    FUZZ_CHECK_MSG(back && *back == *after, body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  collections_parse_result r = parse_collections_response(body);

  FUZZ_CHECK(bool(r) == r.page.has_value());
  if (!r) {
    FUZZ_CHECK(!r.error.empty());
    FUZZ_CHECK_MSG(!esd::fuzz::has_control_char(r.error), r.error);
    return 0;
  }

  const collections_page& page = *r.page;
  FUZZ_CHECK(page.items.size() + page.refused.size() == json_items_count(body));
  for (const collection_item& item : page.items) {
    FUZZ_CHECK(!item.item_id.empty());
    FUZZ_CHECK(!item.product_id.empty());
    FUZZ_CHECK(!item.status.empty());
    for (const std::string* id : {&item.item_id, &item.product_id, &item.status, &item.sku_id, &item.recurrence_id})
      FUZZ_CHECK(id->size() <= max_id_bytes && id->find('\0') == std::string::npos);
    FUZZ_CHECK(!item.quantity || *item.quantity >= 0);
  }
  for (const refused_item& r : page.refused) {
    FUZZ_CHECK(!r.reason.empty());
    FUZZ_CHECK_MSG(!esd::fuzz::has_control_char(r.reason), r.reason);
  }
  FUZZ_CHECK(!page.continuation_token || !page.continuation_token->empty());
  check_next_query(page);
  return 0;
}
