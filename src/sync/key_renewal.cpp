#include "sync/key_renewal.hpp"

#include <boost/json.hpp>

#include "ops/log.hpp"
#include "sync/retry_policy.hpp"
#include "sync/store_answer.hpp"

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
  auto token = co_await tokens.get(gateway.cfg().entra.audience);
  const std::string call_name = "renewing the " + what;
  store_call call{call_name, kind};
  net::http_response resp;
  while (true) {
    if (!token.access_token) {
      result.reason = token.error;
      co_return result;
    }
    net::http_request req;
    req.method = "POST";
    req.url = refresh_uri;
    req.bearer_token = token.access_token;
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = json::serialize(json::object{{"serviceTicket", *token.access_token}, {"key", key}});
    auto [ec, answer] = co_await gateway.send(std::move(req), user_id);
    if (ec) {
      result.reason = "renewing the " + what + " failed: " + ec.message();
      co_return result;
    }
    auto verdict = classify_store_answer(answer, call);
    if (verdict.verdict == store_verdict::ok) {
      resp = std::move(answer);
      break;
    }
    if (verdict.verdict == store_verdict::token_refused) {
      // The refusal may be our token's: judge the key only by what a token fetched after it gets.
      const std::chrono::milliseconds no_wait{0};
      std::optional<std::chrono::milliseconds> over;
      if (!user_id.empty()) over = co_await gateway.admit(user_id, no_wait);
      if (over) {
        result.reason = "renewing the " + what + " postponed: the Store refused the service token and the "
                        "player's request budget is used up";
        co_return result;
      }
      token = co_await tokens.replace_refused(gateway.cfg().entra.audience, *token.access_token);
      call.fresh_token = true;
      continue;
    }
    result.reason = std::move(verdict.failure.reason);
    result.retry_after = verdict.failure.retry_after;
    if (verdict.verdict == store_verdict::key_refused) {
      if (auto held = gateway.hold_key_refusal(user_id, kind, call_name)) {
        result.reason = std::move(held->reason);
      } else {
        result.outcome = renewal_result::status::dead;
      }
    }
    co_return result;
  }
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
