// What the purchase side remembers so repeated requests are answered as the Store answers them: every grant
// order (orderId is the idempotency key; the docs make it unique per user, not globally) with the answer
// it got, and every consume by its tracking id.
#pragma once

#include <boost/json/object.hpp>
#include <map>
#include <string>
#include <utility>

namespace esd::emulator {

struct grant_order {
  std::string player_id, order_id;
  std::string product_id, sku_id, availability_id;
  int quantity = 1;
  std::string item_id;  // the collection item the grant added or changed
  std::string line_item_id;
  std::string created_time;
  std::string response_body;  // the 200 body, sent again as is to a repeated request

  boost::json::object to_json() const {
    return boost::json::object{{"userId", player_id},
                               {"orderId", order_id},
                               {"productId", product_id},
                               {"skuId", sku_id},
                               {"availabilityId", availability_id},
                               {"quantity", quantity},
                               {"itemId", item_id},
                               {"lineItemId", line_item_id},
                               {"createdTime", created_time}};
  }
};

struct consume_record {
  std::string item_id;  // the item the tracking id consumed
};

struct store_orders {
  // By (player, orderId).
  std::map<std::pair<std::string, std::string>, grant_order> grants;
  // By (player, trackingId); for a consume by productId the transactionId is the tracking id.
  std::map<std::pair<std::string, std::string>, consume_record> consumes;
};

}  // namespace esd::emulator
