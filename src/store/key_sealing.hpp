// Encryption at rest for Store ID keys (and any other credential we keep in PostgreSQL): AES-256-GCM
// under a keyring read from [security] key_encryption_key_file, with the key id in every sealed value so
// the key can be rotated without re-encrypting the table first.
//
// Sealed form, plain text safe for a TEXT column:
//   "esd1:" KEYID ":" base64url-without-padding(12-byte random nonce || ciphertext || 16-byte tag)
// The GCM associated data is "esd1:" KEYID ":" followed by the caller's associated data, which should name
// where the value lives (e.g. "user_keys.collections_key:player-42"): a sealed value copied to another
// row or column, or relabelled with another key id, does not open.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esd::store {

struct open_result {
  std::optional<std::string> plaintext;
  // "sealed with unknown key id X", "not a sealed value" or
  // "authentication failed (wrong key, tampered or moved)"; never the plaintext or key bytes.
  std::string error;
  explicit operator bool() const { return plaintext.has_value(); }
};

class keyring;

// Seals with ring.current_id() and a fresh random nonce, so sealing the same plaintext twice gives two
// different values. Throws std::runtime_error only if OpenSSL fails (no randomness, out of memory).
std::string seal(const keyring& ring, std::string_view plaintext, std::string_view associated_data);

// Opens a value sealed with any key of the ring. Never throws.
open_result open_sealed(const keyring& ring, std::string_view sealed,
                        std::string_view associated_data) noexcept;

// True when the value starts with "esd1:" (so a column may hold both sealed and legacy values).
bool is_sealed(std::string_view value);

// Keys read from key_encryption_key_file: one "KEYID BASE64" per line, where KEYID is 1-32 characters of
// [A-Za-z0-9_.-] and BASE64 is standard base64 (padding required) of exactly 32 bytes, e.g. the output of
// `openssl rand -base64 32`. Blank lines and lines starting with '#' are ignored. The FIRST key is the
// current one and seals new values; the others only open values sealed earlier. To rotate: put a new key
// on the first line, keep the old one below it until every value has been resealed.
class keyring {
 public:
  // Throws std::runtime_error naming the line and what is wrong with it, never the key bytes: a bad id,
  // bad base64, a key that is not 32 bytes, a duplicate id, or no key at all.
  static keyring parse(std::string_view text);
  // As parse, and also throws if the file cannot be read; every message names the path.
  static keyring load_file(const std::string& path);

  const std::string& current_id() const;
  bool has(std::string_view id) const;
  std::size_t size() const;

 private:
  // Each entry wipes its own key bytes when destroyed (OPENSSL_cleanse), which also covers the copies a
  // vector leaves behind when it reallocates.
  struct entry {
    std::string id;
    std::array<unsigned char, 32> key{};
    entry() = default;
    entry(const entry&) = default;
    entry& operator=(const entry&) = default;
    ~entry();
  };

  keyring() = default;
  const entry* find(std::string_view id) const;

  std::vector<entry> entries_;  // never empty once parsed; entries_[0] is current

  friend std::string seal(const keyring&, std::string_view, std::string_view);
  friend open_result open_sealed(const keyring&, std::string_view, std::string_view) noexcept;
};

}  // namespace esd::store
