#include "sync/entra_token_cache.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "ops/log.hpp"
#include "store/entra_token.hpp"
#include "sync/daemon_metrics.hpp"

namespace esd::sync {

namespace asio = boost::asio;

entra_token_cache::entra_token_cache(store_gateway& gateway, std::string client_secret)
    : gateway_(gateway), secret_(std::move(client_secret)) {}

asio::awaitable<token_answer> entra_token_cache::replace_refused(const std::string& audience,
                                                                const std::string& refused) {
  auto& e = entries_[audience];
  // Only a fetch that ends after the refusal brings a token fresh enough to judge a key by.
  const auto refused_at = e.generation;
  if (e.token && *e.token == refused) {
    e.token.reset();
    log::warning("entra: the Store refused the service token " + log::field("audience", audience) +
                 "; fetching a new one before any key is judged");
    if (auto* m = gateway_.metrics()) m->inc(metric::service_token_refused);
  }
  for (;;) {
    if (e.token && e.token_generation > refused_at && std::chrono::steady_clock::now() < e.expires)
      co_return token_answer{e.token, {}};
    if (e.fetching) {
      auto done = e.done;
      co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
      if (e.failed_generation == e.generation && e.generation > refused_at)
        co_return token_answer{nullptr, e.last_error};
      continue;
    }
    auto answer = co_await fetch(audience, e);
    if (!answer.access_token || e.token_generation > refused_at) co_return answer;
    co_return token_answer{nullptr, e.last_error};
  }
}

asio::awaitable<token_answer> entra_token_cache::get(const std::string& audience) {
  auto& e = entries_[audience];
  const auto refresh_before = gateway_.cfg().entra.refresh_before;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (e.token && now + refresh_before < e.expires) co_return token_answer{e.token, {}};
    if (e.fetching) {
      // Someone is already asking Entra: wait for that answer instead of asking again.
      const auto waited_for = e.generation;
      auto done = e.done;
      co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
      if (e.failed_generation == waited_for + 1) {
        if (e.token && std::chrono::steady_clock::now() < e.expires) co_return token_answer{e.token, {}};
        co_return token_answer{nullptr, e.last_error};
      }
      continue;
    }
    co_return co_await fetch(audience, e);
  }
}

asio::awaitable<token_answer> entra_token_cache::fetch(const std::string& audience, entry& e) {
  auto ex = co_await asio::this_coro::executor;
  e.fetching = true;
  e.done = std::make_shared<asio::steady_timer>(ex, std::chrono::steady_clock::time_point::max());
  ++fetches_;

  const auto& cfg = gateway_.cfg();
  const auto url = cfg.effective_token_url();
  net::http_request req;
  req.method = "POST";
  req.url = url;
  req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  req.headers.emplace_back("Accept", "application/json");
  req.body = store::build_entra_token_request(store::entra_version_for_url(url), cfg.entra.client_id, secret_,
                                              audience);
  auto [ec, resp] = co_await gateway_.send(api_endpoint::entra_token, std::move(req));

  token_answer answer;
  if (ec) {
    answer.error = "could not reach Entra ID at " + url + ": " + ec.message();
  } else {
    const auto type = resp.headers.find("content-type");
    auto parsed = store::parse_entra_token_response(
        {resp.status, type == resp.headers.end() ? std::string_view{} : std::string_view(type->second),
         resp.body});
    if (parsed) {
      auto lifetime = std::chrono::seconds(std::max<std::int64_t>(parsed.token->expires_in_seconds, 0));
      e.token = std::make_shared<const std::string>(std::move(parsed.token->access_token));
      e.token_generation = e.generation + 1;
      answer.access_token = e.token;
      e.expires = std::chrono::steady_clock::now() + lifetime;
      log::info("entra: fetched an access token " + log::field("audience", audience) + " " +
                log::field("expires_in_s", static_cast<long long>(lifetime.count())));
    } else {
      answer.error = "Entra ID gave no token: " + parsed.error +
                     "; check [entra] tenant_id, client_id and the client secret";
    }
  }
  e.fetching = false;
  ++e.generation;
  last_failure_ = answer.access_token ? std::string() : answer.error;
  if (auto* m = gateway_.metrics()) m->inc(metric::token_fetches, {{"outcome", answer.access_token ? "ok" : "failed"}});
  if (!answer.access_token) {
    ++failed_fetches_;
    e.failed_generation = e.generation;
    e.last_error = answer.error;
    log::warning("entra: " + answer.error);
    // A token that has not expired yet is still good while we could not renew it early.
    if (e.token && std::chrono::steady_clock::now() < e.expires) answer = token_answer{e.token, {}};
  }
  e.done->cancel();
  co_return answer;
}

}  // namespace esd::sync
