#include "sync/store_request.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace esd::sync {

namespace asio = boost::asio;

std::optional<std::chrono::seconds> inline_throttle_wait(const sync_failure& throttled, int waits_so_far,
                                                         std::chrono::milliseconds max_inline_wait) {
  if (waits_so_far >= max_inline_throttle_waits || !throttled.retry_after || *throttled.retry_after > max_inline_wait)
    return std::nullopt;
  // A Retry-After of 0 still gets a pause: asking again at once would only be throttled again.
  return std::max(*throttled.retry_after, std::chrono::seconds(1));
}

asio::awaitable<std::variant<net::http_response, sync_failure>> send_store_request(
    const std::string& user, const store_request& req, store_gateway& gateway, entra_token_cache& tokens,
    int* throttled_waits) {
  const auto& cfg = gateway.cfg();
  const std::string what(req.call.what);
  store_call call = req.call;
  int waits = 0;
  bool admitted = req.first_admitted;
  std::optional<token_answer> fresh_token;  // fetched after the Store refused one: used for the next attempt
  while (true) {
    if (!admitted) {
      const std::chrono::milliseconds max_wait = cfg.sync.max_inline_wait;
      if (auto over = co_await gateway.admit(user, max_wait)) {
        const auto after = std::chrono::ceil<std::chrono::seconds>(*over);
        co_return transient("budget", "this player has used its Store request budget ([store] player_requests = " +
                            std::to_string(cfg.store.player_requests) + " per player_window); " + what +
                            " goes on in " + std::to_string(after.count()) + "s", after);
      }
    }
    admitted = false;
    token_answer token;
    if (fresh_token) {
      token = std::move(*fresh_token);
      fresh_token.reset();
    } else {
      token = co_await tokens.get(cfg.entra.audience);
    }
    if (!token.access_token) co_return transient("entra", token.error);

    std::string body = req.body(*token.access_token);
    auto [ec, resp] = co_await gateway.post_json(req.endpoint, req.url, token.access_token, std::move(body), user);
    if (ec) co_return transient("unreachable", what + ": the Store could not be reached: " + ec.message());
    auto answer = classify_store_answer(resp, call);
    switch (answer.verdict) {
      case store_verdict::ok:
        co_return std::move(resp);
      case store_verdict::token_refused:
        // Maybe our service token, maybe the key: ask again with a token fetched after this refusal.
        fresh_token = co_await tokens.replace_refused(cfg.entra.audience, *token.access_token);
        call.fresh_token = true;
        continue;
      case store_verdict::throttled:
        if (auto wait = inline_throttle_wait(answer.failure, waits, cfg.sync.max_inline_wait)) {
          // Waited out here, the same request asked again: starting the whole sync over would spend the
          // player's budget on pages already read.
          ++waits;
          if (throttled_waits) ++*throttled_waits;
          asio::steady_timer timer(co_await asio::this_coro::executor);
          timer.expires_after(*wait);
          co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
          continue;
        }
        break;
      case store_verdict::key_refused:
        if (auto held = gateway.hold_key_refusal(user, call.key, what)) co_return std::move(*held);
        break;
      case store_verdict::rejected:
      case store_verdict::failed:
        break;
    }
    co_return std::move(answer.failure);
  }
}

}  // namespace esd::sync
