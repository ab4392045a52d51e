#include "sync/purchase_calls.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>

#include "store/store_error.hpp"
#include "sync/page_bookkeeping.hpp"

// GCC 12 misreads Asio's coroutine frame allocator as a new/delete mismatch (a known false positive for
// coroutines): the frame is allocated and freed by the same awaitable_frame_base. For every coroutine here.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace esd::sync {

namespace asio = boost::asio;

namespace {

// One Store call for a player: budget, token, send; a refused service token is fetched again once, and a
// 429 with a short Retry-After is waited out (a few times). Returns the answer (any status) or a failure
// when there was none. The body is built for each attempt, so none is held while an answer is awaited
// besides the one in the request.
asio::awaitable<std::variant<net::http_response, sync_failure>> call_store(const std::string& user_id,
                                                                           const std::string& url,
                                                                           const std::function<std::string()>& body,
                                                                           const std::string& what,
                                                                           store_gateway& gateway,
                                                                           entra_token_cache& tokens) {
  const auto& cfg = gateway.cfg();
  bool token_refreshed = false;
  int throttled_waits = 0;
  while (true) {
    const std::chrono::milliseconds max_wait = cfg.sync.max_inline_wait;
    if (auto over = co_await gateway.admit(user_id, max_wait)) {
      const auto after = std::chrono::ceil<std::chrono::seconds>(*over);
      co_return transient("budget", "this player has used its Store request budget ([store] player_requests); " +
                          what + " goes on in " + std::to_string(after.count()) + "s", after);
    }
    auto token = co_await tokens.get(cfg.entra.audience);
    if (!token.access_token) co_return transient("entra", token.error);
    net::http_request req;
    req.method = "POST";
    req.url = url;
    req.bearer_token = token.access_token;
    req.headers.emplace_back("Content-Type", "application/json");
    req.headers.emplace_back("Accept", "application/json");
    req.body = body();
    auto [ec, resp] = co_await gateway.send(std::move(req), user_id);
    if (ec) co_return transient("unreachable", what + ": the Store could not be reached: " + ec.message());
    if (resp.status == 401 && !token_refreshed) {
      const auto err = store::parse_store_error_body(resp.body);
      if (err.inner_code != "AuthenticationTokenInvalid" && err.code != "AuthenticationTokenInvalid" &&
          err.inner_code != "InconsistentClientId") {
        tokens.invalidate(cfg.entra.audience, *token.access_token);
        token_refreshed = true;
        continue;
      }
    }
    if (resp.status == 429 && throttled_waits < 3) {
      const auto after = retry_after_of(resp.headers);
      if (after && *after <= cfg.sync.max_inline_wait) {
        ++throttled_waits;
        asio::steady_timer wait(co_await asio::this_coro::executor);
        wait.expires_after(std::max(*after, std::chrono::seconds(1)));
        co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
    }
    co_return std::move(resp);
  }
}

}  // namespace

sync_failure classify_purchase_answer(const net::http_response& resp, const std::string& what,
                                      store::key_kind key_kind) {
  const auto err = store::parse_store_error_body(resp.body);
  const std::string code = err.inner_code.empty() ? err.code : err.inner_code;
  const std::string detail = code + (err.message.empty() ? "" : ": " + err.message);
  const std::string key = key_kind == store::key_kind::purchase ? "purchase key" : "collections key";
  if (resp.status == 429) {
    const auto after = retry_after_of(resp.headers);
    return transient("throttled", what + ": the Store is throttling requests for this player (HTTP 429)", after);
  }
  if (resp.status == 401 && (code == "AuthenticationTokenInvalid" || code == "InconsistentClientId")) {
    auto f = permanent("dead_key", what + ": the Store rejected the " + key + " (" + code +
                       "); the game client must request a new key and upload it");
    f.dead_key = key_kind;
    return f;
  }
  if (resp.status >= 500)
    return transient("store_error", what + ": the Store failed (HTTP " + std::to_string(resp.status) +
                     (code.empty() ? "" : " " + code) + ")");
  if (resp.status == 408)
    return transient("store_error", what + ": the Store timed out (HTTP 408)");
  return permanent("store_rejected", what + ": the Store refused it (HTTP " + std::to_string(resp.status) +
                   (detail.empty() ? "" : " " + detail) + ")");
}

// GCC 12 misreads Asio's coroutine frame allocator as a new/delete mismatch (see player_sync.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

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
  const std::string url = gateway.cfg().store.purchase_url + "/v6.0/purchases/grant";
  const std::function<std::string()> body = [&g] { return store::build_grant_request_v6(g); };
  auto answer = co_await call_store(user_id, url, body, what, gateway, tokens);
  if (auto* f = std::get_if<sync_failure>(&answer)) co_return std::move(*f);
  const auto& resp = std::get<net::http_response>(answer);
  if (resp.status != 200 && resp.status != 201) co_return classify_purchase_answer(resp, what, store::key_kind::purchase);
  auto parsed = store::parse_grant_response(resp.body, task.order_id);
  if (!parsed) co_return transient("bad_answer", what + ": the Store's answer made no sense: " + parsed.error);
  co_return std::move(*parsed.answer);
}

asio::awaitable<std::optional<sync_failure>> consume_item(const std::string& user_id, const db::consume_task& task,
                                                          std::string_view collections_key, store_gateway& gateway,
                                                          entra_token_cache& tokens) {
  const std::string what = "consume of item " + task.item_id;
  const std::string url = gateway.cfg().store.collections_url + "/v6.0/collections/consume";
  const std::function<std::string()> body = [&] {
    return store::build_consume_request_v6(collections_key, task.item_id, task.tracking_id);
  };
  auto answer = co_await call_store(user_id, url, body, what, gateway, tokens);
  if (auto* f = std::get_if<sync_failure>(&answer)) co_return std::move(*f);
  const auto& resp = std::get<net::http_response>(answer);
  if (resp.status == 204 || resp.status == 200) co_return std::nullopt;
  co_return classify_purchase_answer(resp, what, store::key_kind::collections);
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
    auto answer = co_await call_store(user_id, url, body, what, gateway, tokens);
    if (auto* f = std::get_if<sync_failure>(&answer)) co_return std::move(*f);
    const auto& resp = std::get<net::http_response>(answer);
    if (resp.status != 200) co_return classify_purchase_answer(resp, what, store::key_kind::purchase);
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
