#include "sync/key_renewal.hpp"

#include <boost/json.hpp>

#include "ops/log.hpp"
#include "sync/retry_policy.hpp"
#include "sync/store_request.hpp"

namespace esd::sync {

namespace asio = boost::asio;
namespace json = boost::json;

bool renewal_due(std::optional<store::store_time> issued_at, std::optional<store::store_time> expires_at,
                 std::chrono::seconds renew_after, std::chrono::seconds renew_before_expiry,
                 store::store_time now) {
  using std::chrono::microseconds;
  if (issued_at && now.micros - issued_at->micros >= std::chrono::duration_cast<microseconds>(renew_after).count())
    return true;
  if (expires_at && expires_at->micros - now.micros <=
                        std::chrono::duration_cast<microseconds>(renew_before_expiry).count())
    return true;
  return false;
}

bool is_documented_renew_url(std::string_view url) {
  // The target holds the query too, so an exact match also refuses "?..." after the path.
  const auto u = net::parse_https_url(url);
  return u && u->target == store_key_renew_path;
}

asio::awaitable<renewal_result> renew_store_id_key(std::string_view key, store::key_kind kind,
                                                   store_gateway& gateway, entra_token_cache& tokens,
                                                   const std::string& user_id) {
  renewal_result result;
  const std::string what = std::string(store::to_string(kind)) + " key";
  auto decoded = store::decode_store_id_key(key);
  if (!decoded) {
    result.reason = "the stored " + what + " cannot be renewed: " + decoded.error;
    co_return result;
  }
  const auto& refresh_uri = decoded.claims->refresh_uri;
  if (!gateway.is_store_endpoint(refresh_uri)) {
    auto u = net::parse_https_url(refresh_uri);
    result.outcome = renewal_result::status::refused_host;
    result.reason = "refused to renew the " + what + " at " + (u ? "host " + u->host : std::string("an invalid URL")) +
                    ": its refreshUri is not one of the configured Store endpoints";
    co_return result;
  }
  if (!is_documented_renew_url(refresh_uri)) {
    result.outcome = renewal_result::status::refused_host;
    result.reason = "refused to renew the " + what + ": its refreshUri is not the Store's renew endpoint (" +
                    std::string(store_key_renew_path) + ", no query)";
    co_return result;
  }
  const std::string call_name = "renewing the " + what;
  // The renew body carries the service token too (serviceTicket), so it is built from the token each
  // attempt goes with.
  const store_request request{api_endpoint::key_renew, refresh_uri, {call_name, kind},
                              [key](const std::string& service_token) {
                                return json::serialize(json::object{{"serviceTicket", service_token}, {"key", key}});
                              },
                              true};
  auto answer = co_await send_store_request(user_id, request, gateway, tokens);
  if (auto* failure = std::get_if<sync_failure>(&answer)) {
    result.reason = std::move(failure->reason);
    result.retry_after = failure->retry_after;
    if (failure->dead_key) result.outcome = renewal_result::status::dead;
    co_return result;
  }
  const auto& resp = std::get<net::http_response>(answer);
  std::string new_key;
  try {
    auto v = json::parse(resp.body);
    if (auto* k = v.as_object().if_contains("key"); k && k->is_string()) new_key = std::string(k->as_string());
  } catch (const std::exception&) {
  }
  auto fresh = store::decode_store_id_key(new_key);
  if (!fresh || fresh.claims->kind != kind) {
    result.reason = "the Store's answer to renewing the " + what + " held no usable key" +
                    (fresh ? std::string() : std::string(": ") + fresh.error);
    co_return result;
  }
  result.outcome = renewal_result::status::renewed;
  result.key = std::move(new_key);
  result.issued_at = store::store_time{fresh.claims->issued_at * 1'000'000};
  result.expires_at = store::store_time{fresh.claims->expires_at * 1'000'000};
  co_return result;
}

}  // namespace esd::sync
