// One player's sync: check the stored key, query the collections API from the watermark, follow
// continuation tokens to the end, and de-duplicate what came back. No database work here; the caller
// commits the outcome in one transaction.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <variant>

#include "db/queue.hpp"
#include "sync/entra_token_cache.hpp"
#include "sync/retry_policy.hpp"
#include "sync/store_gateway.hpp"

namespace esd::sync {

using player_sync_result = std::variant<db::sync_outcome, sync_failure>;

boost::asio::awaitable<player_sync_result> sync_player(const db::sync_job& job, store_gateway& gateway,
                                                       entra_token_cache& tokens);

// The modifiedAfter we send: nothing on a first or full sync, else the watermark minus the overlap.
std::optional<store::store_time> modified_after_for(const db::sync_job& job, std::chrono::seconds overlap);

}  // namespace esd::sync
