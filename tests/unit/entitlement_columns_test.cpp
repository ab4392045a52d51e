// The entitlement columns declared once: the upsert statement and the row encoder derived from them.
#define BOOST_TEST_MODULE entitlement_columns
#include "db/entitlement_columns.hpp"

#include <boost/test/unit_test.hpp>

#include <regex>
#include <set>

using namespace esd::db;
using esd::store::collection_item;
using esd::store::store_time;

namespace {

collection_item every_field() {
  collection_item i;
  i.item_id = "item-1";
  i.product_id = "9NBLGGH4R315";
  i.sku_id = "0010";
  i.product_type = "Durable";
  i.status = "Active";
  i.quantity = 3;
  i.acquired_date = store_time{0};
  i.start_date = store_time{1'000'000};
  i.end_date = store_time::infinity();
  i.modified_date = store_time{-1};
  i.transaction_id = "tx \"quoted\"";
  i.order_id = "order\\1";
  i.order_line_item_id = "line";
  i.dev_offer_id = "offer";
  i.in_app_offer_token = "token,with,commas";
  i.ownership_type = "OwnedByBeneficiary";
  i.sku_type = "Full";
  i.acquisition_type = "Single";
  i.purchased_country = "US";
  i.purchaser_identity_type = "b2b";
  i.purchaser_identity_value = "pid";
  i.recurrence_id = "rec";
  i.local_ticket_reference = "ticket";
  i.is_trial = true;
  i.is_in_trial_period = false;
  i.trial_time_remaining_micros = 5'000'000;
  i.tags = {"a", "b"};
  i.fulfillment_data = {"{json}"};
  i.satisfied_by_product_ids = {};
  return i;
}

collection_item required_only() {
  collection_item i;
  i.item_id = "item-2";
  i.product_id = "p";
  i.status = "Revoked";
  i.modified_date = store_time{0};
  return i;
}

std::size_t index_of(std::string_view name) {
  const auto cols = entitlement_columns();
  for (std::size_t k = 0; k < cols.size(); ++k)
    if (cols[k].name == name) return k + 1;  // parameter 0 is user_id
  BOOST_FAIL("no column " << name);
  return 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_column_is_declared_once) {
  std::set<std::string_view> names{"user_id"};
  for (const auto& c : entitlement_columns()) {
    BOOST_TEST(names.insert(c.name).second, c.name << " declared twice");
    BOOST_TEST(c.encode != nullptr);
  }
  BOOST_TEST(names.contains("item_id"));
  BOOST_TEST(names.contains("modified_date"));
}

BOOST_AUTO_TEST_CASE(rows_are_encoded_column_by_column) {
  entitlement_rows rows;
  rows.add("player \"1\"", every_field());
  rows.add("player-2", required_only());
  BOOST_TEST(rows.size() == 2u);
  const auto p = rows.take();
  BOOST_TEST_REQUIRE(p.size() == entitlement_columns().size() + 1);
  BOOST_TEST(p[0] == R"({"player \"1\"","player-2"})");
  BOOST_TEST(p[index_of("item_id")] == R"({"item-1","item-2"})");
  // Required text stays text even when empty; optional text is NULL when empty.
  BOOST_TEST(p[index_of("sku_id")] == R"({"0010",""})");
  BOOST_TEST(p[index_of("product_type")] == R"({"Durable",""})");
  BOOST_TEST(p[index_of("transaction_id")] == R"({"tx \"quoted\"",NULL})");
  BOOST_TEST(p[index_of("order_id")] == R"({"order\\1",NULL})");
  BOOST_TEST(p[index_of("in_app_offer_token")] == R"({"token,with,commas",NULL})");
  BOOST_TEST(p[index_of("quantity")] == "{3,NULL}");
  BOOST_TEST(p[index_of("acquired_date")] == R"({"1970-01-01 00:00:00.000000+00",NULL})");
  BOOST_TEST(p[index_of("start_date")] == R"({"1970-01-01 00:00:01.000000+00",NULL})");
  BOOST_TEST(p[index_of("end_date")] == R"({"infinity",NULL})");
  BOOST_TEST(p[index_of("modified_date")] ==
             R"({"1969-12-31 23:59:59.999999+00","1970-01-01 00:00:00.000000+00"})");
  BOOST_TEST(p[index_of("is_trial")] == "{t,NULL}");
  BOOST_TEST(p[index_of("is_in_trial_period")] == "{f,NULL}");
  BOOST_TEST(p[index_of("trial_time_remaining")] == "{5000000,NULL}");
  BOOST_TEST(p[index_of("tags")] == R"({"{\"a\",\"b\"}","{}"})");
  BOOST_TEST(p[index_of("fulfillment_data")] == R"({"{\"{json}\"}","{}"})");
  BOOST_TEST(p[index_of("satisfied_by_product_ids")] == R"({"{}","{}"})");
  // Every column has one element per row.
  for (std::size_t k = 0; k < p.size(); ++k) BOOST_TEST(p[k] != "{}", "parameter " << k);

  BOOST_TEST(rows.size() == 0u);
  rows.add("player-3", required_only());
  BOOST_TEST(rows.take()[0] == R"({"player-3"})");
}

BOOST_AUTO_TEST_CASE(the_statement_names_every_column_once_per_list) {
  const std::string& incremental = entitlement_upsert_sql(false);
  const std::string& full = entitlement_upsert_sql(true);
  const auto n = entitlement_columns().size() + 1;
  // One parameter per column, numbered in order.
  const std::regex param(R"(\$(\d+)::(\w+)\[\])");
  std::size_t expected = 1;
  for (auto it = std::sregex_iterator(full.begin(), full.end(), param); it != std::sregex_iterator(); ++it)
    BOOST_TEST(std::stoul((*it)[1]) == expected++);
  BOOST_TEST(expected == n + 1);
  for (const auto& c : entitlement_columns()) {
    const std::string name(c.name);
    // Inserted, unnested under its own name, and updated on conflict unless it is part of the key.
    const bool listed = full.find(", " + name + ",") != std::string::npos || full.find(", " + name + ")") != std::string::npos;
    BOOST_TEST(listed, name);
    BOOST_TEST((full.find(name + " = EXCLUDED." + name) != std::string::npos) == (name != "item_id"), name);
  }
  BOOST_TEST(full.find("ON CONFLICT (user_id, item_id)") != std::string::npos);
  BOOST_TEST(full.find("synced_at = now()") != std::string::npos);
  BOOST_TEST(full.find("WHERE EXCLUDED.modified_date") == std::string::npos);
  BOOST_TEST(incremental == full + " WHERE EXCLUDED.modified_date >= e.modified_date");
}
