// Players' subscriptions (recurrences), as POST /v8.0/b2b/recurrences/query serves them and
// PUT /_emulator/players/{userId}/subscriptions sets them: one JSON object per subscription in the served
// shape, keyed by its id ("mdr:0:<32 hex>:<guid>"), dates in the Store's 7-digit form.
// recurrenceState: get-subscriptions-for-a-user documents None, Active, Inactive, Canceled, InDunning and
// Failed; Microsoft.StoreServices' RecurrenceStates adds Revoked (refunded). The emulator serves whatever
// state a test sets, so a client can be tried on one the documentation does not list.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace esd::emulator {

class subscription_book {
 public:
  using subscriptions = std::map<std::string, boost::json::object>;  // by id

  // Replaces the player's subscriptions with `list`, each completed: id generated when missing,
  // beneficiary "pub:<the userId claim of the player's keys>", skuId 0010, market US, autoRenew true,
  // isTrial false, recurrenceState Active, cancellationDate now when Canceled, startTime now (or the
  // cancellation, if earlier), expirationTime startTime + 30 days (the cancellation when Canceled),
  // expirationTimeWithGrace expirationTime (+ 14 days while Active or InDunning); lastModified is stamped
  // `now_ticks`. Throws std::invalid_argument naming the entry and field;
  // nothing changes then. Returns the ids in list order.
  boost::json::array replace(const std::string& player_id, const boost::json::array& list,
                             std::int64_t now_ticks);

  // nullptr when the player has none.
  const subscriptions* find(const std::string& player_id) const;

 private:
  std::map<std::string, subscriptions> by_player_;
};

}  // namespace esd::emulator
