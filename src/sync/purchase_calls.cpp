#include "sync/purchase_calls.hpp"

#include <map>

#include "sync/page_loop.hpp"
#include "sync/store_request.hpp"

namespace esd::sync {

namespace asio = boost::asio;

asio::awaitable<std::variant<store::grant_answer, sync_failure>> grant_product(
    const std::string& user_id, const db::grant_task& task, std::string_view purchase_key, store_gateway& gateway,
    entra_token_cache& tokens) {
  store::grant_request_v6 g;
  g.purchase_key = std::string(purchase_key);
  g.availability_id = task.availability_id;
  g.product_id = task.product_id;
  g.sku_id = task.sku_id;
  g.language = task.language;
  g.market = task.market;
  g.order_id = task.order_id;
  g.dev_offer_id = task.dev_offer_id;
  g.quantity = task.quantity;
  const std::string what = "grant of " + task.product_id + "/" + task.sku_id;
  const store_request request{api_endpoint::grant, gateway.cfg().store.purchase_url + "/v6.0/purchases/grant",
                              {what, store::key_kind::purchase},
                              [&g](const std::string&) { return store::build_grant_request_v6(g); }};
  auto answer = co_await send_store_request(user_id, request, gateway, tokens);
  if (auto* f = std::get_if<sync_failure>(&answer)) co_return std::move(*f);
  auto parsed = store::parse_grant_response(std::get<net::http_response>(answer).body, task.order_id);
  if (!parsed) co_return transient("bad_answer", what + ": the Store's answer made no sense: " + parsed.error);
  co_return std::move(*parsed.answer);
}

asio::awaitable<std::optional<sync_failure>> consume_item(const std::string& user_id, const db::consume_task& task,
                                                          std::string_view collections_key, store_gateway& gateway,
                                                          entra_token_cache& tokens) {
  const std::string what = "consume of item " + task.item_id;
  const store_request request{api_endpoint::consume, gateway.cfg().store.collections_url + "/v6.0/collections/consume",
                              {what, store::key_kind::collections}, [&](const std::string&) {
                                return store::build_consume_request_v6(collections_key, task.item_id, task.tracking_id);
                              }};
  auto answer = co_await send_store_request(user_id, request, gateway, tokens);
  if (auto* f = std::get_if<sync_failure>(&answer)) co_return std::move(*f);
  co_return std::nullopt;
}

asio::awaitable<std::variant<std::vector<store::recurrence>, sync_failure>> read_subscriptions(
    const std::string& user_id, std::string_view purchase_key, store_gateway& gateway, entra_token_cache& tokens) {
  const auto& cfg = gateway.cfg();
  // The same recurrence on two pages: the last seen is kept, in the place of the first.
  std::vector<store::recurrence> unique;
  std::map<std::string, std::size_t> at;
  const page_body body = [purchase_key](const std::optional<std::string>& continuation) {
    return store::build_recurrences_query(purchase_key, continuation);
  };
  const page_reader read = [&](const std::string& answer, int page) -> page_step {
    auto parsed = store::parse_recurrences_response(answer);
    if (!parsed)
      return transient("bad_answer", "subscriptions (page " + std::to_string(page) +
                       "): the Store's answer made no sense: " + parsed.error);
    for (auto& r : parsed.page->items) {
      auto [it, fresh] = at.emplace(r.id, unique.size());
      if (fresh) unique.push_back(std::move(r)); else unique[it->second] = std::move(r);
    }
    return std::move(parsed.page->continuation_token);
  };
  const store_request request{api_endpoint::recurrences_query, cfg.store.purchase_url + "/v8.0/b2b/recurrences/query",
                              {"subscriptions", store::key_kind::purchase}, {}};
  const page_limits limits{cfg.store.max_pages, cfg.store.max_collection_bytes, "subscriptions"};
  if (auto failure = co_await read_store_pages(user_id, request, body, limits, read, gateway, tokens))
    co_return std::move(*failure);
  co_return unique;
}

}  // namespace esd::sync
