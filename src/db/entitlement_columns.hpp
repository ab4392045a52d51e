// The columns of entitlement_sync.entitlements a sync writes, declared once: each one's name, the element
// type of the array parameter that carries it, and how a collection item's field is encoded into it. The
// upsert statement and the row encoder are both derived from this list, so the two cannot drift apart.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "db/pg_array.hpp"
#include "store/collections.hpp"

namespace esd::db {

struct entitlement_column {
  std::string_view name;
  std::string_view element_type;  // of its array parameter
  // The column's value from the unnested element t.<name>; empty: the element as it is.
  std::string_view value_sql;
  void (*encode)(pg_array& out, const store::collection_item& item);
};

// Every column but user_id (the player's, not the item's), in the statement's order.
std::span<const entitlement_column> entitlement_columns();

// Upserts the rows of one entitlement_rows::take() (user_id first, then entitlement_columns()) from
// unnest() of one array per column. Incremental: a row whose modified_date is newer than the item's
// stays as it is (an older answer never overwrites a newer row). Full: every row seen is rewritten.
const std::string& entitlement_upsert_sql(bool full);

// The rows of one upsert, encoded column by column.
class entitlement_rows {
 public:
  entitlement_rows();
  void add(std::string_view user_id, const store::collection_item& item);
  std::size_t size() const { return rows_; }
  // One array literal per statement parameter, in order; starts over empty.
  std::vector<std::string> take();

 private:
  pg_array user_id_;
  std::vector<pg_array> columns_;
  std::size_t rows_ = 0;
};

}  // namespace esd::db
