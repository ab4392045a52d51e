// One player's sync: check and renew the stored keys, carry out due grants and consume reports, read the
// collection (collections_read.hpp) and the subscriptions. No database work here; the caller
// commits the outcome in one transaction.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <variant>

#include "sync/collections_read.hpp"
#include "db/sync_job.hpp"
#include "sync/entra_token_cache.hpp"
#include "sync/retry_policy.hpp"
#include "sync/store_gateway.hpp"

namespace esd::sync {

struct renewed_key {
  store::key_kind kind;
  std::string new_key;
  store::store_time issued_at, expires_at;
};

struct dead_key {
  store::key_kind kind;
  std::string reason;
};

struct player_sync_result {
  std::variant<db::sync_outcome, sync_failure> result;
  std::optional<sync_failure> subscriptions_failure;  // the collections sync worked, the subscriptions read did not
  std::vector<renewed_key> renewed;  // to store whatever the outcome: the old keys may be gone
  std::vector<dead_key> dead;        // keys the Store refused along the way (besides a failure's own)
};

// How one grant or consume request went: done without a failure.
enum class request_kind { grant, consume };
struct request_report {
  request_kind kind;
  std::int64_t request_id;
  int attempts_before;
  std::optional<sync_failure> failure;
  std::string order_state, line_item_id;  // grants
};
// Records a request's outcome at once (the Store has acted: a crash now must not lose that).
using request_recorder = std::function<boost::asio::awaitable<void>(const request_report&)>;

// Carries out the player's due grants (purchase key) and consume reports (collections key), each recorded
// through `record` as soon as the Store has answered, then queries the collections and, with a usable
// purchase key and [store] subscriptions on, reads the subscriptions.
boost::asio::awaitable<player_sync_result> sync_player(const db::sync_job& job, store_gateway& gateway,
                                                       entra_token_cache& tokens, const request_recorder& record);

}  // namespace esd::sync
