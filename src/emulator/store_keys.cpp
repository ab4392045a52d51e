#include "emulator/store_keys.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>
#include <stdexcept>
#include <vector>

namespace esd::emulator {

namespace json = boost::json;

namespace {

constexpr std::string_view claim_prefix = "http://schemas.microsoft.com/marketplace/2015/08/claims/key/";

std::string claim(std::string_view name) { return std::string(claim_prefix) + std::string(name); }

// Standard base64 with padding, the alphabet the real payload and userId claims use.
std::string base64_encode(const unsigned char* data, std::size_t len) {
  std::string out(4 * ((len + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(len));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::vector<unsigned char>> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 8192) return std::nullopt;
  std::vector<unsigned char> out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t len = static_cast<std::size_t>(n);
  if (text.ends_with("=="))
    len -= 2;
  else if (text.ends_with("="))
    len -= 1;
  out.resize(len);
  return out;
}

std::optional<std::int64_t> int_claim(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v->as_uint64());
  return std::nullopt;
}

std::optional<std::string> string_claim(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
constexpr std::size_t iv_len = 12, tag_len = 16;

}  // namespace

store_key_authority::store_key_authority(const jwt_signer& signer) : signer_(signer) {
  if (RAND_bytes(payload_key_.data(), static_cast<int>(payload_key_.size())) != 1)
    throw std::runtime_error("cannot draw random bytes for the key payload cipher");
}

std::string store_key_authority::opaque_user_id(std::string_view player_id) {
  const std::string input = "entitlement-store-emulator/user/" + std::string(player_id);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return base64_encode(digest, sizeof digest);
}

std::string store_key_authority::seal(std::string_view player_id) const {
  std::vector<unsigned char> out(iv_len + player_id.size() + tag_len);
  if (RAND_bytes(out.data(), iv_len) != 1) throw std::runtime_error("RAND_bytes failed");
  cipher_ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, payload_key_.data(), out.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data() + iv_len, &len,
                        reinterpret_cast<const unsigned char*>(player_id.data()),
                        static_cast<int>(player_id.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + iv_len + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_len, out.data() + iv_len + player_id.size()) !=
          1)
    throw std::runtime_error("AES-GCM sealing failed");
  return base64_encode(out.data(), out.size());
}

std::optional<std::string> store_key_authority::unseal(std::string_view payload) const {
  const auto bytes = base64_decode(payload);
  if (!bytes || bytes->size() < iv_len + tag_len) return std::nullopt;
  const std::size_t text_len = bytes->size() - iv_len - tag_len;
  std::string plain(text_len, '\0');
  cipher_ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  std::vector<unsigned char> tag(bytes->end() - tag_len, bytes->end());
  const bool ok =
      ctx &&
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, payload_key_.data(), bytes->data()) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                        bytes->data() + iv_len, static_cast<int>(text_len)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_len, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &len) == 1;
  if (!ok) {
    ERR_clear_error();
    return std::nullopt;
  }
  return plain;
}

std::string store_key_authority::mint(const store_key_spec& spec) const {
  const bool collections = spec.kind == store::key_kind::collections;
  const std::string_view audience = collections ? collections_key_audience : purchase_key_audience;
  // Claim order as in the documented examples.
  json::object claims;
  claims[claim("clientId")] = spec.client_id;
  claims[claim("payload")] = seal(spec.player_id);
  claims[claim("userId")] = opaque_user_id(spec.player_id);
  claims[claim("refreshUri")] = spec.refresh_uri;
  claims["iat"] = spec.issued_at;
  claims["iss"] = audience;
  claims["aud"] = audience;
  claims["exp"] = spec.expires_at;
  claims["nbf"] = spec.issued_at - 3600;
  return signer_.sign(claims);
}

std::optional<store_key_spec> store_key_authority::read(std::string_view key) const {
  const auto claims = signer_.verify(key);
  if (!claims) return std::nullopt;
  const auto aud = string_claim(*claims, "aud");
  const auto payload = string_claim(*claims, claim("payload"));
  const auto user_id = string_claim(*claims, claim("userId"));
  const auto iat = int_claim(*claims, "iat");
  const auto exp = int_claim(*claims, "exp");
  if (!aud || !payload || !user_id || !iat || !exp) return std::nullopt;
  store_key_spec spec;
  if (*aud == collections_key_audience)
    spec.kind = store::key_kind::collections;
  else if (*aud == purchase_key_audience)
    spec.kind = store::key_kind::purchase;
  else
    return std::nullopt;
  auto player = unseal(*payload);
  if (!player || opaque_user_id(*player) != *user_id) return std::nullopt;
  spec.player_id = std::move(*player);
  spec.issued_at = *iat;
  spec.expires_at = *exp;
  spec.client_id = string_claim(*claims, claim("clientId")).value_or("");
  spec.refresh_uri = string_claim(*claims, claim("refreshUri")).value_or("");
  return spec;
}

}  // namespace esd::emulator
