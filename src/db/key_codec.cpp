#include "db/key_codec.hpp"

#include <openssl/sha.h>

namespace esd::db {

std::string stored_key_fingerprint(std::string_view stored) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(stored.data()), stored.size(), digest);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof digest);
  for (unsigned char b : digest) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

std::string key_codec::binding(const std::string& user_id, store::key_kind kind) {
  return "user_keys." + std::string(store::to_string(kind)) + "_key:" + user_id;
}

std::string key_codec::to_stored(const std::string& key, const std::string& user_id, store::key_kind kind) const {
  auto r = ring();
  if (!r) return key;
  return store::seal(*r, key, binding(user_id, kind));
}

std::optional<std::string> key_codec::from_stored(const std::string& stored, const std::string& user_id,
                                                  store::key_kind kind, std::string& error) const {
  if (!store::is_sealed(stored)) return stored;
  auto r = ring();
  if (!r) {
    error = "the stored " + std::string(store::to_string(kind)) +
            " key is encrypted, but [security] key_encryption_key_file is not set";
    return std::nullopt;
  }
  auto opened = store::open_sealed(*r, stored, binding(user_id, kind));
  if (!opened) {
    error = "the stored " + std::string(store::to_string(kind)) + " key cannot be decrypted: " + opened.error +
            "; check [security] key_encryption_key_file, or have the game client upload a new key";
    return std::nullopt;
  }
  return std::move(*opened.plaintext);
}

}  // namespace esd::db
