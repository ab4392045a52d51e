// Entra ID access tokens for the Store's B2B APIs (client credentials): fetched once, cached per
// (tenant, client, audience), renewed ahead of expiry, and single-flight: however many syncs ask at
// once, one request goes to Entra and the rest wait for its answer.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "sync/store_gateway.hpp"

namespace esd::sync {

struct token_answer {
  // Shared with the cache: a thousand requests in flight hold one copy of the token, not a thousand.
  std::shared_ptr<const std::string> access_token;
  std::string error;  // why none could be had, in words; never the secret
};

class entra_token_cache {
 public:
  entra_token_cache(store_gateway& gateway, std::string client_secret);

  boost::asio::awaitable<token_answer> get(const std::string& audience);

  // The Store refused `refused` (a 401 that may be the token's fault): forgets it, and returns a token
  // obtained after this call, through the same single flight as get(): however many requests were refused
  // at once, one new token is fetched for them (two when refusals keep arriving while it is fetched). The
  // first refusal of a token is logged and counted.
  boost::asio::awaitable<token_answer> replace_refused(const std::string& audience, const std::string& refused);

  // A new secret (reload); cached tokens stay valid until they expire.
  void set_client_secret(std::string secret) { secret_ = std::move(secret); }

  std::uint64_t fetches() const { return fetches_; }
  std::uint64_t failed_fetches() const { return failed_fetches_; }
  // Why the last token request failed; empty when the last one succeeded (or none was made yet).
  const std::string& last_failure() const { return last_failure_; }

 private:
  struct entry {
    std::shared_ptr<const std::string> token;
    std::chrono::steady_clock::time_point expires{};
    bool fetching = false;
    std::uint64_t generation = 0;         // bumped at the end of every fetch
    std::uint64_t token_generation = 0;   // generation of the fetch that brought `token`
    std::uint64_t failed_generation = 0;  // generation of the last failed fetch
    std::string last_error;
    std::shared_ptr<boost::asio::steady_timer> done;  // cancelled when a fetch ends
  };

  boost::asio::awaitable<token_answer> fetch(const std::string& audience, entry& e);

  store_gateway& gateway_;
  std::string secret_;
  std::map<std::string, entry> entries_;  // std::map: references stay valid across inserts
  std::uint64_t fetches_ = 0;
  std::uint64_t failed_fetches_ = 0;
  std::string last_failure_;
};

}  // namespace esd::sync
