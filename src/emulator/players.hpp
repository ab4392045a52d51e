// The emulator's players and their Store collections: v6 items kept in the shape they are served in,
// filled in from a seed file, generated in bulk for benchmarks, or changed through the control API.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace esd::emulator {

struct store_item {
  std::string item_id;
  std::int64_t modified_ticks = 0;  // modifiedDate, the paging order with item_id
  std::int64_t start_ticks = 0, end_ticks = 0;
  boost::json::object fields;  // every v6 field, keys in alphabetical order like the documented example
};

struct player {
  std::string user_id;
  std::map<std::string, store_item> items;  // by itemId
};

class player_registry {
 public:
  player_registry();

  player& ensure(const std::string& user_id);
  player* find(const std::string& user_id);
  const std::map<std::string, player>& all() const { return players_; }

  // Merges `item` into the player's item with the same itemId (a new item when there is none or no
  // itemId), fills every missing field with a sensible value, writes dates in the 7-digit form, and
  // stamps modifiedDate with a fresh, distinct "now" unless `item` carries one.
  // Throws std::invalid_argument naming the offending field.
  const store_item& upsert(player& p, const boost::json::object& item);

  // Strictly increasing "now" ticks, so items changed in the same microsecond still order.
  std::int64_t fresh_modified_ticks();

  // {"players":[{"userId":..,"items":[..]}]}. Throws std::runtime_error naming the file and the problem.
  void load_seed(const std::string& path);

  // Players "<prefix>1".."<prefix>count", each with items_per_player varied items. Reproducible per
  // player id, except that dates are relative to now.
  void generate(int count, int items_per_player, const std::string& prefix);

 private:
  std::map<std::string, player> players_;
  std::int64_t last_stamp_ = 0;
};

}  // namespace esd::emulator
