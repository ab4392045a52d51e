// Microsoft Store ID keys (UserCollectionsId / UserPurchaseId): JWTs whose claims we read.
//
// The signature cannot be checked here (Microsoft publishes no key for it), so a key is untrusted input:
// decode defensively, never throw, and say precisely what is wrong with a bad one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esd::store {

enum class key_kind { collections, purchase };

std::string_view to_string(key_kind k);  // "collections" / "purchase"

struct store_id_key_claims {
  key_kind kind = key_kind::collections;  // from aud: ".../collections..." or ".../purchase..."
  std::string audience;                   // aud
  std::string issuer;                     // iss
  std::string client_id;    // http://schemas.microsoft.com/marketplace/2015/08/claims/key/clientId
  std::string user_id;      // .../claims/key/userId (opaque, not the game's user id)
  std::string refresh_uri;  // .../claims/key/refreshUri (untrusted: check its host before use)
  std::string payload;      // .../claims/key/payload (sealed by the Store, opaque to us)
  std::int64_t issued_at = 0;   // iat, seconds since the epoch
  std::int64_t not_before = 0;  // nbf
  std::int64_t expires_at = 0;  // exp
};

struct key_decode_result {
  std::optional<store_id_key_claims> claims;
  std::string error;  // a sentence a support engineer understands, empty on success; never contains the key
  explicit operator bool() const { return claims.has_value(); }
};

// Decodes header.payload.signature (base64url, padding optional). Fails, with a reason, when: not three
// dot-separated parts, bad base64url, payload not a JSON object, aud missing or neither collections nor
// purchase, exp/iat missing or not numbers. Keys longer than 16 KiB are rejected unread.
key_decode_result decode_store_id_key(std::string_view jwt);

// base64url without padding (RFC 4648 section 5), and its inverse (accepts padding; nullopt if invalid).
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace esd::store
