#include "db/entitlement_columns.hpp"

namespace esd::db {

namespace {

using item = store::collection_item;

const entitlement_column columns[] = {
    {"item_id", "text", "", [](pg_array& a, const item& i) { a.text(i.item_id); }},
    {"product_id", "text", "", [](pg_array& a, const item& i) { a.text(i.product_id); }},
    {"sku_id", "text", "", [](pg_array& a, const item& i) { a.text(i.sku_id); }},
    {"product_type", "text", "", [](pg_array& a, const item& i) { a.text(i.product_type); }},
    {"status", "text", "", [](pg_array& a, const item& i) { a.text(i.status); }},
    {"quantity", "integer", "", [](pg_array& a, const item& i) { a.integer(i.quantity); }},
    {"acquired_date", "timestamptz", "", [](pg_array& a, const item& i) { a.time(i.acquired_date); }},
    {"start_date", "timestamptz", "", [](pg_array& a, const item& i) { a.time(i.start_date); }},
    {"end_date", "timestamptz", "", [](pg_array& a, const item& i) { a.time(i.end_date); }},
    {"modified_date", "timestamptz", "", [](pg_array& a, const item& i) { a.time(i.modified_date); }},
    {"transaction_id", "text", "", [](pg_array& a, const item& i) { a.text_or_null(i.transaction_id); }},
    {"order_id", "text", "", [](pg_array& a, const item& i) { a.text_or_null(i.order_id); }},
    {"order_line_item_id", "text", "", [](pg_array& a, const item& i) { a.text_or_null(i.order_line_item_id); }},
    {"dev_offer_id", "text", "", [](pg_array& a, const item& i) { a.text_or_null(i.dev_offer_id); }},
    {"in_app_offer_token", "text", "", [](pg_array& a, const item& i) { a.text_or_null(i.in_app_offer_token); }},
    {"ownership_type", "text", "", [](pg_array& a, const item& i) { a.text_or_null(i.ownership_type); }},
    {"sku_type", "text", "", [](pg_array& a, const item& i) { a.text_or_null(i.sku_type); }},
    {"acquisition_type", "text", "", [](pg_array& a, const item& i) { a.text_or_null(i.acquisition_type); }},
    {"purchased_country", "text", "", [](pg_array& a, const item& i) { a.text_or_null(i.purchased_country); }},
    {"purchaser_identity_type", "text", "",
     [](pg_array& a, const item& i) { a.text_or_null(i.purchaser_identity_type); }},
    {"purchaser_identity_value", "text", "",
     [](pg_array& a, const item& i) { a.text_or_null(i.purchaser_identity_value); }},
    {"recurrence_id", "text", "", [](pg_array& a, const item& i) { a.text_or_null(i.recurrence_id); }},
    {"local_ticket_reference", "text", "",
     [](pg_array& a, const item& i) { a.text_or_null(i.local_ticket_reference); }},
    {"is_trial", "boolean", "", [](pg_array& a, const item& i) { a.boolean(i.is_trial); }},
    {"is_in_trial_period", "boolean", "", [](pg_array& a, const item& i) { a.boolean(i.is_in_trial_period); }},
    {"trial_time_remaining", "bigint", "make_interval(secs => t.trial_time_remaining / 1e6)",
     [](pg_array& a, const item& i) { a.integer(i.trial_time_remaining_micros); }},
    {"tags", "text", "t.tags::text[]", [](pg_array& a, const item& i) { a.text_array(i.tags); }},
    {"fulfillment_data", "text", "t.fulfillment_data::text[]",
     [](pg_array& a, const item& i) { a.text_array(i.fulfillment_data); }},
    {"satisfied_by_product_ids", "text", "t.satisfied_by_product_ids::text[]",
     [](pg_array& a, const item& i) { a.text_array(i.satisfied_by_product_ids); }},
};

std::string upsert_sql(bool full) {
  std::string names = "user_id", values = "t.user_id", params = "$1::text[]", updates;
  int n = 1;
  for (const auto& c : columns) {
    names += ", " + std::string(c.name);
    values += ", " + (c.value_sql.empty() ? "t." + std::string(c.name) : std::string(c.value_sql));
    params += ", $" + std::to_string(++n) + "::" + std::string(c.element_type) + "[]";
    if (c.name != "item_id") updates += std::string(c.name) + " = EXCLUDED." + std::string(c.name) + ", ";
  }
  return "INSERT INTO entitlement_sync.entitlements AS e (" + names + ") SELECT " + values + " FROM unnest(" +
         params + ") AS t(" + names + ") ON CONFLICT (user_id, item_id) DO UPDATE SET " + updates +
         "synced_at = now()" + (full ? "" : " WHERE EXCLUDED.modified_date >= e.modified_date");
}

}  // namespace

std::span<const entitlement_column> entitlement_columns() { return columns; }

const std::string& entitlement_upsert_sql(bool full) {
  static const std::string incremental = upsert_sql(false), everything = upsert_sql(true);
  return full ? everything : incremental;
}

entitlement_rows::entitlement_rows() : columns_(std::size(columns)) {}

void entitlement_rows::add(std::string_view user_id, const store::collection_item& item) {
  user_id_.text(user_id);
  for (std::size_t k = 0; k < std::size(columns); ++k) columns[k].encode(columns_[k], item);
  ++rows_;
}

std::vector<std::string> entitlement_rows::take() {
  std::vector<std::string> out;
  out.reserve(columns_.size() + 1);
  out.push_back(user_id_.take());
  for (auto& c : columns_) out.push_back(c.take());
  rows_ = 0;
  return out;
}

}  // namespace esd::db
