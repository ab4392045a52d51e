// The only way out to the network. Every request goes to a host named in the configuration (the Store
// URLs and the Entra token URL) or nowhere: the service token must never reach any other host, whatever
// a key's refreshUri claim says.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <set>
#include <string>
#include <utility>

#include "config/config.hpp"
#include "net/https_client.hpp"
#include "ops/metrics.hpp"
#include "sync/key_refusal_burst.hpp"
#include "sync/request_limits.hpp"
#include "sync/retry_policy.hpp"

namespace esd::sync {

// Every call the daemon makes, named once by its caller: the `endpoint` label of
// entitlement_syncd_store_requests_total (a URL says nothing reliable about which call it was).
enum class api_endpoint { collections_query, consume, grant, recurrences_query, key_renew, entra_token };
std::string_view endpoint_label(api_endpoint e);

class store_gateway {
 public:
  store_gateway(net::https_client& client, const config::config& cfg, ops::metrics* metrics = nullptr);

  ops::metrics* metrics() const { return metrics_; }

  // True when url is https and its host and port belong to a configured endpoint (Store or Entra).
  bool allowed(const std::string& url) const;

  // True when url is https at the host and port of [store] collections_url or purchase_url: the only
  // places a key may be renewed.
  bool is_store_endpoint(const std::string& url) const;

  // Sends through the pooled client; a URL outside the allowed endpoints fails with
  // boost::asio::error::access_denied and nothing is sent.
  // With `user`, the player's budget slot taken by admit() is moved to the time the answer came back: the
  // Store counts a request when it arrives, which is after admission, so counting from admission would let
  // one request too many into the Store's window at its edge.
  boost::asio::awaitable<std::pair<boost::system::error_code, net::http_response>> send(
      api_endpoint endpoint, net::http_request r, const std::string& user = {});

  // A JSON POST to a Store endpoint with the service token, through send().
  boost::asio::awaitable<std::pair<boost::system::error_code, net::http_response>> post_json(
      api_endpoint endpoint, std::string url, std::shared_ptr<const std::string> service_token, std::string body,
      const std::string& user);

  // Waits until a Store request for this player fits the global rate limit and the player's budget
  // ([store] max_requests_per_second, player_requests per player_window). Returns nullopt once the request
  // may go (the budget is taken), or, taking nothing, how long until the player's budget allows one when
  // that is longer than max_wait.
  boost::asio::awaitable<std::optional<std::chrono::milliseconds>> admit(const std::string& user,
                                                                         std::chrono::milliseconds max_wait);

  // A player's key, refused with a fresh service token too: nullopt when the refusal stands (the key is
  // dead), or, when keys of many players are being refused at once, the transient failure to record
  // instead (logged and counted: the Store's problem, not the player's).
  std::optional<sync_failure> hold_key_refusal(const std::string& user, store::key_kind kind,
                                               std::string_view what);

  const config::config& cfg() const { return cfg_; }
  net::https_client& client() { return client_; }

 private:
  net::https_client& client_;
  const config::config& cfg_;
  std::set<std::pair<std::string, std::uint16_t>> endpoints_;
  std::set<std::pair<std::string, std::uint16_t>> store_endpoints_;
  ops::metrics* metrics_;
  player_budget budget_;
  rate_limiter rate_;
  key_refusal_burst refusals_;
};

}  // namespace esd::sync
