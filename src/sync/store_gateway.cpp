#include "sync/store_gateway.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace esd::sync {

store_gateway::store_gateway(net::https_client& client, const config::config& cfg) : client_(client), cfg_(cfg) {
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

boost::asio::awaitable<std::pair<boost::system::error_code, net::http_response>> store_gateway::send(
    net::http_request r) {
  if (!allowed(r.url)) co_return std::pair{make_error_code(boost::asio::error::access_denied), net::http_response{}};
  co_return co_await client_.send(std::move(r));
}

}  // namespace esd::sync
