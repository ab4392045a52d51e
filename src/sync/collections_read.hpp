// Reading a player's collection: the collections query from the watermark, every page, the items
// de-duplicated and the new watermark chosen so that nothing is skipped.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string_view>
#include <variant>

#include "db/sync_job.hpp"
#include "sync/entra_token_cache.hpp"
#include "sync/retry_policy.hpp"
#include "sync/store_gateway.hpp"

namespace esd::sync {

// POST {collections_url}/v6.0/collections/query, every page, with the player's collections key.
boost::asio::awaitable<std::variant<db::sync_outcome, sync_failure>> read_collection(const db::sync_job& job,
                                                                                    std::string_view collections_key,
                                                                                    store_gateway& gateway,
                                                                                    entra_token_cache& tokens);

// The modifiedAfter we send: nothing on a first or full sync, else the watermark minus the overlap.
std::optional<store::store_time> modified_after_for(const db::sync_job& job, std::chrono::seconds overlap);

// One item per item id, the Store having repeated some (across pages): the one modified last wins, of
// equal dates the later one. The others keep their order.
void keep_newest_per_item(std::vector<store::collection_item>& items);

}  // namespace esd::sync
