#include "store/uploaded_key_check.hpp"

#include "store/json_fields.hpp"

namespace esd::store {
namespace {

std::string utc_text(std::int64_t epoch_seconds) {
  return format_store_date(store_time{epoch_seconds * 1'000'000});
}

std::string check_time(std::string_view name, std::int64_t seconds) {
  if (seconds >= key_bounds::earliest_time && seconds <= key_bounds::latest_time) return {};
  return "its " + std::string(name) + " claim (" + std::to_string(seconds) +
         ") is not a time between the years 1970 and 9999";
}

std::string check_text(std::string_view name, std::string_view value, std::size_t max_bytes) {
  const std::string claim = "its " + std::string(name) + " claim";
  if (value.size() > max_bytes)
    return claim + " is " + std::to_string(value.size()) + " bytes long; at most " + std::to_string(max_bytes) +
           " are allowed";
  if (value.find('\0') != std::string_view::npos) return claim + " contains a NUL character";
  if (!is_valid_utf8(value)) return claim + " is not valid UTF-8";
  return {};
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // the valid range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < len || p[1] < lo || p[1] > hi) return false;
    for (std::size_t i = 2; i < len; ++i)
      if ((p[i] & 0xC0) != 0x80) return false;
    p += len;
  }
  return true;
}

std::string check_key_claims(const store_id_key_claims& c) {
  for (auto [name, seconds] : {std::pair{"exp", c.expires_at}, std::pair{"iat", c.issued_at},
                               std::pair{"nbf", c.not_before}}) {
    if (auto problem = check_time(name, seconds); !problem.empty()) return problem;
  }
  struct text_claim {
    const char* name;
    const std::string& value;
    std::size_t max_bytes;
  };
  for (const auto& [name, value, max_bytes] :
       {text_claim{"aud", c.audience, key_bounds::max_audience}, text_claim{"iss", c.issuer, key_bounds::max_audience},
        text_claim{"clientId", c.client_id, key_bounds::max_client_id},
        text_claim{"userId", c.user_id, key_bounds::max_opaque_user_id},
        text_claim{"refreshUri", c.refresh_uri, key_bounds::max_refresh_uri},
        text_claim{"payload", c.payload, key_bounds::max_payload}}) {
    if (auto problem = check_text(name, value, max_bytes); !problem.empty()) return problem;
  }
  return {};
}

uploaded_key_check check_uploaded_key(std::string_view key, key_kind expected, std::int64_t now_s,
                                      std::string_view expected_client_id) {
  auto decoded = decode_store_id_key(key);
  if (!decoded) return {"is not a valid Microsoft Store ID key: " + decoded.error, {}, {}};
  const auto& claims = *decoded.claims;
  if (auto problem = check_key_claims(claims); !problem.empty())
    return {"is not a valid Microsoft Store ID key: " + problem, {}, {}};
  if (claims.kind != expected)
    return {"is a " + std::string(to_string(claims.kind)) + " key (aud " + quoted_excerpt(claims.audience) +
                "); the game client must send its UserCollectionsId as collections_key and its UserPurchaseId "
                "as purchase_key",
            {}, {}};
  if (!expected_client_id.empty() && claims.client_id != expected_client_id)
    return {"was created for another Entra application (InconsistentClientId: the key's clientId is " +
                quoted_excerpt(claims.client_id) + ", this service uses " + std::string(expected_client_id) +
                "); the game client must request its key with the client id in [entra] client_id",
            {}, {}};
  if (claims.expires_at <= now_s)
    return {"had already expired at " + utc_text(claims.expires_at) +
                "; the game client must request a new key from the Store and upload it",
            {}, {}};
  if (claims.expires_at - now_s > key_bounds::max_lifetime_ahead)
    return {"is not a valid Microsoft Store ID key: its exp claim (" + utc_text(claims.expires_at) +
                ") is more than " +
                std::to_string(key_bounds::max_lifetime_ahead / 86400) + " days away; no Store ID key lives that long",
            {}, {}};
  if (claims.issued_at - now_s > key_bounds::max_issued_ahead)
    return {"is not a valid Microsoft Store ID key: its iat claim (" + utc_text(claims.issued_at) +
                ") is more than a day in the future",
            {}, {}};
  return {{}, store_time{claims.issued_at * 1'000'000}, store_time{claims.expires_at * 1'000'000}};
}

uploads_verdict check_player_uploads(std::string_view user_id, const std::vector<key_upload>& uploads,
                                     std::int64_t now_s, std::string_view expected_client_id) {
  uploads_verdict v;
  auto take = [&](std::optional<std::string_view> key, key_kind kind, std::int64_t event_id,
                  std::optional<kept_key>& kept) {
    if (!key) return;
    auto checked = check_uploaded_key(*key, kind, now_s, expected_client_id);
    if (checked)
      kept = kept_key{std::string(*key), checked.issued_at, checked.expires_at};
    else
      v.problems.push_back("the " + std::string(kind == key_kind::collections ? "collections_key" : "purchase_key") +
                           " uploaded in event " + std::to_string(event_id) + " " + checked.problem);
  };
  for (const auto& u : uploads) {
    take(u.collections_key, key_kind::collections, u.event_id, v.collections);
    take(u.purchase_key, key_kind::purchase, u.event_id, v.purchase);
  }
  if (auto problem = check_user_id(user_id); !problem.empty()) {
    v.problems.insert(v.problems.begin(), problem + "; the game backend must upload it with a valid one");
    v.collections.reset();
    v.purchase.reset();
  }
  return v;
}

std::string check_user_id(std::string_view user_id) {
  if (user_id.empty()) return "the user_id is empty";
  if (!is_valid_utf8(user_id)) return "the user_id is not valid UTF-8";
  std::size_t chars = 0;
  for (char ch : user_id) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return "the user_id contains control characters";
    if ((c & 0xC0) != 0x80) ++chars;
  }
  if (chars > key_bounds::max_user_id_chars)
    return "the user_id is " + std::to_string(chars) + " characters long; at most " +
           std::to_string(key_bounds::max_user_id_chars) + " are allowed";
  return {};
}

}  // namespace esd::store
