// The free products POST /v6.0/purchases/grant may grant, as PUT /_emulator/catalog sets them: each a
// (productId, skuId, availabilityId) with the productType and title the order and the collection item get.
// The real grant only grants free products of the caller's own catalogue; anything else is a 400.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace esd::emulator {

struct catalog_product {
  std::string product_id, sku_id, availability_id;
  std::string product_type;  // Durable, UnmanagedConsumable, Consumable, Game, Application, ...
  std::string title;

  boost::json::object to_json() const;
};

// The productTypes a consume may fulfil: developer-managed (UnmanagedConsumable) and Store-managed
// (Consumable) consumables.
bool is_consumable(std::string_view product_type);

class product_catalog {
 public:
  // Replaces the whole catalogue with [{productId, skuId, availabilityId, productType, title}] (productType
  // defaults to Durable, title to the productId). Throws std::invalid_argument naming the entry and field;
  // the catalogue is unchanged then.
  void replace(const boost::json::array& products);

  // Store IDs compare without regard to case.
  const catalog_product* find(std::string_view product_id, std::string_view sku_id,
                              std::string_view availability_id) const;
  // Which of the three does not match any product (for a 400 that names it): "productId", "skuId" or
  // "availabilityId"; call only when find() returned nullptr.
  std::string_view first_mismatch(std::string_view product_id, std::string_view sku_id) const;

  boost::json::array to_json() const;

 private:
  std::vector<catalog_product> products_;
};

}  // namespace esd::emulator
