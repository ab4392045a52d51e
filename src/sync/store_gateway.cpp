#include "sync/store_gateway.hpp"

#include "ops/log.hpp"
#include "sync/daemon_metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace esd::sync {

store_gateway::store_gateway(net::https_client& client, const config::config& cfg, ops::metrics* metrics)
    : client_(client), cfg_(cfg), metrics_(metrics),
      budget_(cfg.store.player_requests, cfg.store.player_window), rate_(cfg.store.max_requests_per_second),
      refusals_(static_cast<std::size_t>(cfg.keys.refusal_burst_players), cfg.keys.refusal_burst_window) {
  for (const auto& url : {cfg.store.collections_url, cfg.store.purchase_url}) {
    if (auto u = net::parse_https_url(url)) store_endpoints_.emplace(u->host, u->port);
  }
  endpoints_ = store_endpoints_;
  if (auto u = net::parse_https_url(cfg.effective_token_url())) endpoints_.emplace(u->host, u->port);
}

bool store_gateway::allowed(const std::string& url) const {
  auto u = net::parse_https_url(url);
  return u && endpoints_.count({u->host, u->port}) > 0;
}

bool store_gateway::is_store_endpoint(const std::string& url) const {
  auto u = net::parse_https_url(url);
  return u && store_endpoints_.count({u->host, u->port}) > 0;
}

std::string_view endpoint_label(api_endpoint e) {
  switch (e) {
    case api_endpoint::collections_query: return "collections_query";
    case api_endpoint::consume: return "consume";
    case api_endpoint::grant: return "grant";
    case api_endpoint::recurrences_query: return "recurrences_query";
    case api_endpoint::key_renew: return "key_renew";
    case api_endpoint::entra_token: return "entra_token";
  }
  return "other";
}

boost::asio::awaitable<std::pair<boost::system::error_code, net::http_response>> store_gateway::post_json(
    api_endpoint endpoint, std::string url, std::shared_ptr<const std::string> service_token, std::string body,
    const std::string& user) {
  net::http_request req;
  req.method = "POST";
  req.url = std::move(url);
  req.bearer_token = std::move(service_token);
  req.headers.emplace_back("Content-Type", "application/json");
  req.headers.emplace_back("Accept", "application/json");
  req.body = std::move(body);
  co_return co_await send(endpoint, std::move(req), user);
}

boost::asio::awaitable<std::pair<boost::system::error_code, net::http_response>> store_gateway::send(
    api_endpoint endpoint, net::http_request r, const std::string& user) {
  if (!allowed(r.url)) co_return std::pair{make_error_code(boost::asio::error::access_denied), net::http_response{}};
  auto answer = co_await client_.send(std::move(r));
  if (!user.empty()) budget_.settle(user, std::chrono::steady_clock::now());
  if (metrics_) {
    const std::string status = answer.first ? std::string("error") : std::to_string(answer.second.status);
    metrics_->inc(metric::store_requests, {{"endpoint", std::string(endpoint_label(endpoint))}, {"status", status}});
    if (!answer.first && answer.second.status == 429) metrics_->inc(metric::store_throttled);
  }
  co_return answer;
}

boost::asio::awaitable<std::optional<std::chrono::milliseconds>> store_gateway::admit(
    const std::string& user, std::chrono::milliseconds max_wait) {
  namespace asio = boost::asio;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (true) {
    const auto wait = budget_.take(user, std::chrono::steady_clock::now());
    if (wait.count() == 0) break;
    if (wait > max_wait) co_return wait;
    if (metrics_) metrics_->inc(metric::store_paced, {{"limit", "player"}});
    timer.expires_after(wait);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  while (true) {
    const auto wait = rate_.take(std::chrono::steady_clock::now());
    if (wait.count() == 0) break;
    if (metrics_) metrics_->inc(metric::store_paced, {{"limit", "global"}});
    timer.expires_after(wait);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return std::nullopt;
}

std::optional<sync_failure> store_gateway::hold_key_refusal(const std::string& user, store::key_kind kind,
                                                            std::string_view what) {
  const auto j = refusals_.refused(user, std::chrono::steady_clock::now());
  if (j == key_refusal_burst::judgement::stands) return std::nullopt;
  const std::string burst = "the Store refused the keys of more than " + std::to_string(refusals_.max_players()) +
                            " players within " + std::to_string(refusals_.window().count()) + "s";
  if (metrics_) metrics_->inc(metric::key_refusals_held, {{"key", std::string(store::to_string(kind))}});
  if (j == key_refusal_burst::judgement::burst_began)
    log::error("keys: " + burst + ": taken as a problem on the Store's side; keys are kept and the syncs "
               "retried until refusals slow down");
  return transient("refusal_burst", std::string(what) + ": the Store refused the " + std::string(store::to_string(kind)) +
                   " key, but " + burst + " (a problem on the Store's side, not this player's): the key is kept "
                   "and the sync retried");
}

}  // namespace esd::sync
