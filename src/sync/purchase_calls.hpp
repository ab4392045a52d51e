// One player's purchase-side Store calls: a free-product grant, a consumable fulfilment report, and the
// subscriptions read. Each is made through send_store_request (store_request.hpp) and says in words what
// went wrong.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "db/sync_job.hpp"
#include "store/purchase.hpp"
#include "sync/entra_token_cache.hpp"
#include "sync/retry_policy.hpp"
#include "sync/store_gateway.hpp"

namespace esd::sync {

// POST {purchase_url}/v6.0/purchases/grant with the task's orderId. A lost or malformed answer is transient:
// sending the same orderId again can never grant twice.
boost::asio::awaitable<std::variant<store::grant_answer, sync_failure>> grant_product(
    const std::string& user_id, const db::grant_task& task, std::string_view purchase_key, store_gateway& gateway,
    entra_token_cache& tokens);

// POST {collections_url}/v6.0/collections/consume with the item and the tracking id; nullopt on 204.
boost::asio::awaitable<std::optional<sync_failure>> consume_item(const std::string& user_id,
                                                                 const db::consume_task& task,
                                                                 std::string_view collections_key,
                                                                 store_gateway& gateway, entra_token_cache& tokens);

// POST {purchase_url}/v8.0/b2b/recurrences/query, every page.
boost::asio::awaitable<std::variant<std::vector<store::recurrence>, sync_failure>> read_subscriptions(
    const std::string& user_id, std::string_view purchase_key, store_gateway& gateway, entra_token_cache& tokens);

}  // namespace esd::sync
