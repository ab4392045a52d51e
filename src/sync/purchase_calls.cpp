#include "sync/purchase_calls.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>

#include "sync/page_bookkeeping.hpp"
#include "sync/store_answer.hpp"

// GCC 12 misreads Asio's coroutine frame allocator as a new/delete mismatch (a known false positive for
// coroutines): the frame is allocated and freed by the same awaitable_frame_base. For every coroutine here.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace esd::sync {

namespace asio = boost::asio;

namespace {

// One Store call for a player: budget, token, send. A 401 that may be the service token's fault is asked
// again once with a token fetched after it, and a 429 with a short Retry-After is waited out (a few
// times). Returns a 2xx answer, or the failure to record. The body is built for each attempt, so none is
// held while an answer is awaited besides the one in the request.
asio::awaitable<std::variant<net::http_response, sync_failure>> call_store(const std::string& user_id,
                                                                           const std::string& url,
                                                                           const std::function<std::string()>& body,
                                                                           store_call call,
                                                                           store_gateway& gateway,
                                                                           entra_token_cache& tokens) {
  const auto& cfg = gateway.cfg();
  const std::string what(call.what);
  int throttled_waits = 0;
  auto token = co_await tokens.get(cfg.entra.audience);
  while (true) {
    if (!token.access_token) co_return transient("entra", token.error);
    const std::chrono::milliseconds max_wait = cfg.sync.max_inline_wait;
    if (auto over = co_await gateway.admit(user_id, max_wait)) {
      const auto after = std::chrono::ceil<std::chrono::seconds>(*over);
      co_return transient("budget", "this player has used its Store request budget ([store] player_requests); " +
                          what + " goes on in " + std::to_string(after.count()) + "s", after);
    }
    net::http_request req;
    req.method = "POST";
    req.url = url;
    req.bearer_token = token.access_token;
    req.headers.emplace_back("Content-Type", "application/json");
    req.headers.emplace_back("Accept", "application/json");
    req.body = body();
    auto [ec, resp] = co_await gateway.send(std::move(req), user_id);
    if (ec) co_return transient("unreachable", what + ": the Store could not be reached: " + ec.message());
    auto answer = classify_store_answer(resp, call);
    switch (answer.verdict) {
      case store_verdict::ok:
        co_return std::move(resp);
      case store_verdict::token_refused:
        token = co_await tokens.replace_refused(cfg.entra.audience, *token.access_token);
        call.fresh_token = true;
        continue;
      case store_verdict::throttled:
        if (throttled_waits < 3 && answer.failure.retry_after && *answer.failure.retry_after <= cfg.sync.max_inline_wait) {
          ++throttled_waits;
          asio::steady_timer wait(co_await asio::this_coro::executor);
          wait.expires_after(std::max(*answer.failure.retry_after, std::chrono::seconds(1)));
          co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
          token = co_await tokens.get(cfg.entra.audience);
          continue;
        }
        break;
      case store_verdict::key_refused:
        if (auto held = gateway.hold_key_refusal(user_id, call.key, what)) co_return std::move(*held);
        break;
      case store_verdict::rejected:
      case store_verdict::failed:
        break;
    }
    co_return std::move(answer.failure);
  }
}

}  // namespace

// GCC 12 misreads Asio's coroutine frame allocator as a new/delete mismatch (see player_sync.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

asio::awaitable<std::variant<store::grant_answer, sync_failure>> grant_product(
    const std::string& user_id, const grant_task& task, std::string_view purchase_key, store_gateway& gateway,
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
  const std::string url = gateway.cfg().store.purchase_url + "/v6.0/purchases/grant";
  const std::function<std::string()> body = [&g] { return store::build_grant_request_v6(g); };
  auto answer = co_await call_store(user_id, url, body, {what, store::key_kind::purchase}, gateway, tokens);
  if (auto* f = std::get_if<sync_failure>(&answer)) co_return std::move(*f);
  const auto& resp = std::get<net::http_response>(answer);
  auto parsed = store::parse_grant_response(resp.body, task.order_id);
  if (!parsed) co_return transient("bad_answer", what + ": the Store's answer made no sense: " + parsed.error);
  co_return std::move(*parsed.answer);
}

asio::awaitable<std::optional<sync_failure>> consume_item(const std::string& user_id, const consume_task& task,
                                                          std::string_view collections_key, store_gateway& gateway,
                                                          entra_token_cache& tokens) {
  const std::string what = "consume of item " + task.item_id;
  const std::string url = gateway.cfg().store.collections_url + "/v6.0/collections/consume";
  const std::function<std::string()> body = [&] {
    return store::build_consume_request_v6(collections_key, task.item_id, task.tracking_id);
  };
  auto answer = co_await call_store(user_id, url, body, {what, store::key_kind::collections}, gateway, tokens);
  if (auto* f = std::get_if<sync_failure>(&answer)) co_return std::move(*f);
  co_return std::nullopt;
}

asio::awaitable<std::variant<std::vector<store::recurrence>, sync_failure>> read_subscriptions(
    const std::string& user_id, std::string_view purchase_key, store_gateway& gateway, entra_token_cache& tokens) {
  const auto& cfg = gateway.cfg();
  const std::string url = cfg.store.purchase_url + "/v8.0/b2b/recurrences/query";
  std::vector<store::recurrence> all;
  std::optional<std::string> continuation;
  page_bookkeeping pages(cfg.store.max_collection_bytes, "subscriptions");
  for (int page = 1;; ++page) {
    if (page > cfg.store.max_pages)
      co_return permanent("too_many_pages", "subscriptions: more than " + std::to_string(cfg.store.max_pages) +
                          " pages ([store] max_pages)");
    const std::string what = "subscriptions (page " + std::to_string(page) + ")";
    const std::function<std::string()> body = [&] { return store::build_recurrences_query(purchase_key, continuation); };
    auto answer = co_await call_store(user_id, url, body, {what, store::key_kind::purchase}, gateway, tokens);
    if (auto* f = std::get_if<sync_failure>(&answer)) co_return std::move(*f);
    const auto& resp = std::get<net::http_response>(answer);
    if (auto over = pages.count_answer(resp.body.size())) co_return std::move(*over);
    auto parsed = store::parse_recurrences_response(resp.body);
    if (!parsed) co_return transient("bad_answer", what + ": the Store's answer made no sense: " + parsed.error);
    for (auto& r : parsed.page->items) all.push_back(std::move(r));
    if (!parsed.page->continuation_token) break;
    if (auto cycle = pages.follow(*parsed.page->continuation_token)) co_return std::move(*cycle);
    continuation = std::move(parsed.page->continuation_token);
  }
  // The same recurrence on two pages: keep the last seen.
  std::vector<store::recurrence> unique;
  std::map<std::string, std::size_t> at;
  for (auto& r : all) {
    auto [it, fresh] = at.emplace(r.id, unique.size());
    if (fresh) unique.push_back(std::move(r)); else unique[it->second] = std::move(r);
  }
  co_return unique;
}

#pragma GCC diagnostic pop

}  // namespace esd::sync
