// purchase_service's POST /v8.0/b2b/recurrences/query (get-subscriptions-for-a-user.md): the player's
// subscriptions in id order, a page at a time, with a continuationToken while more follow.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <iterator>
#include <stdexcept>

#include "emulator/purchase_service.hpp"
#include "emulator/store_errors.hpp"
#include "emulator/store_request.hpp"

namespace esd::emulator {

namespace json = boost::json;

namespace {

constexpr std::string_view token_prefix = "rq1.";

std::string to_hex(const unsigned char* data, std::size_t n) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += hex[data[i] >> 4];
    s += hex[data[i] & 15];
  }
  return s;
}

std::optional<std::string> from_hex(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  const auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    const int hi = digit(s[i]), lo = digit(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

}  // namespace

std::string purchase_service::mac_hex(const std::string& player_id, const std::string& last_id) const {
  const std::string data = player_id + '\0' + last_id;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), token_key_.data(), static_cast<int>(token_key_.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len))
    throw std::runtime_error("HMAC failed");
  return to_hex(mac, 16);
}

std::string purchase_service::continuation_token(const std::string& player_id,
                                                 const std::string& last_id) const {
  return std::string(token_prefix) +
         to_hex(reinterpret_cast<const unsigned char*>(last_id.data()), last_id.size()) + "." +
         mac_hex(player_id, last_id);
}

std::optional<std::string> purchase_service::last_id_of(const std::string& player_id,
                                                        std::string_view token) const {
  if (!token.starts_with(token_prefix)) return std::nullopt;
  token.remove_prefix(token_prefix.size());
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto last_id = from_hex(token.substr(0, dot));
  if (!last_id || mac_hex(player_id, *last_id) != token.substr(dot + 1)) return std::nullopt;
  return last_id;
}

http_response purchase_service::recurrences_query(const http_request& req) {
  state_.count(&emulator_stats::recurrence_queries);
  http_response refused_call;
  auto call = auth_.open_post(req, purchase_source, refused_call);
  if (!call) return refused_call;
  const boost::json::object* body = &call->body;
  const auto key = purchase_key_of(*call, refused_call);
  if (!key) return refused_call;
  const std::string& player_id = key->player_id;

  if (const auto* v = body->if_contains("sbx"); v && !v->is_null() && !v->is_string())
    return bad_parameter("sbx must be a sandbox id string such as XDKS.1.", purchase_source);
  std::size_t page_size = static_cast<std::size_t>(config_.recurrence_page_size);
  if (const auto* v = body->if_contains("pageSize"); v && !v->is_null()) {
    // get-subscriptions-for-a-user.md types it as a string; a number is taken too.
    std::int64_t n = -1;
    if (v->is_int64())
      n = v->as_int64();
    else if (v->is_string() && !v->as_string().empty() && v->as_string().size() < 6 &&
             std::all_of(v->as_string().begin(), v->as_string().end(),
                         [](char c) { return c >= '0' && c <= '9'; }))
      n = std::stoll(std::string(v->as_string()));
    if (n < 1 || n > 1000)
      return bad_parameter("pageSize must be a whole number from 1 to 1000.", purchase_source);
    page_size = static_cast<std::size_t>(n);
  }
  std::optional<std::string> after;
  if (const auto* v = body->if_contains("continuationToken"); v && !v->is_null()) {
    if (!v->is_string()) return bad_parameter("continuationToken must be a string.", purchase_source);
    if (!v->as_string().empty()) {
      after = last_id_of(player_id, v->as_string());
      if (!after)
        return bad_parameter(
            "continuationToken is not valid: pass the continuationToken of the previous page for this user.",
            purchase_source);
    }
  }

  json::array page;
  std::optional<std::string> next_token;
  {
    std::lock_guard lock(state_.mutex);
    if (const int wait = state_.budget.admit(player_id))
      return rate_limited(state_.budget.operations(), state_.budget.window_seconds(), wait);
    if (const auto* subs = state_.subscriptions.find(player_id)) {
      auto it = after ? subs->upper_bound(*after) : subs->begin();
      for (; it != subs->end() && page.size() < page_size; ++it) page.push_back(it->second);
      if (it != subs->end() && !page.empty())
        next_token = continuation_token(player_id, std::prev(it)->first);
    }
    state_.stats.subscriptions_served += page.size();
  }
  json::object out;
  out["items"] = std::move(page);
  if (next_token) out["continuationToken"] = *next_token;
  auto res = json_response(http::status::ok, out);
  add_store_headers(res);
  return res;
}

}  // namespace esd::emulator
