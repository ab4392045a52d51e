// Renewing a Microsoft Store ID key at the refreshUri its claims name, with the service token.
//
// The refreshUri claim is untrusted input and the renew body carries the service token: we renew only at
// the documented renew path on a host of the configured Store URLs, and refuse anything else without
// sending a byte.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "store/store_date.hpp"
#include "store/store_id_key.hpp"
#include "sync/entra_token_cache.hpp"
#include "sync/store_gateway.hpp"

namespace esd::sync {

struct renewal_result {
  enum class status { renewed, refused_host, dead, failed } outcome = status::failed;
  std::string key;                // the new key, when renewed
  store::store_time issued_at{}, expires_at{};
  std::string reason;             // in words, never containing a key or token
  std::optional<std::chrono::seconds> retry_after;
};

// The renew endpoint's path on the collections and purchase hosts (Microsoft's "Renew a Microsoft Store ID
// key"), the same for both kinds of key.
inline constexpr std::string_view store_key_renew_path = "/v6.0/b2b/keys/renew";

// True for https://host[:port]/v6.0/b2b/keys/renew exactly: no query, fragment or userinfo, nothing else
// on the path. The host is checked separately (store_gateway::is_store_endpoint).
bool is_documented_renew_url(std::string_view url);

// Due when older than renew_after (from iat) or within renew_before_expiry of exp.
bool renewal_due(std::optional<store::store_time> issued_at, std::optional<store::store_time> expires_at,
                 std::chrono::seconds renew_after, std::chrono::seconds renew_before_expiry,
                 store::store_time now);

// Renews `key` for `user_id` through send_store_request. The caller has taken the player's budget for the
// first request (whether a renewal is worth a request now is the caller's choice); a retry after a refused
// service token or a short 429 is admitted like any other Store request.
boost::asio::awaitable<renewal_result> renew_store_id_key(std::string_view key, store::key_kind kind,
                                                          store_gateway& gateway, entra_token_cache& tokens,
                                                          const std::string& user_id);

}  // namespace esd::sync
