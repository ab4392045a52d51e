// How keys are kept in user_keys: AES-256-GCM sealed when [security] key_encryption_key_file is set
// (bound to the row and column, so a value copied elsewhere does not open), plain text otherwise.
// Plain values written before encryption was turned on still open, and are sealed on their next write.
#pragma once

#include <optional>
#include <string>

#include "store/key_sealing.hpp"
#include "store/store_id_key.hpp"

namespace esd::db {

class key_codec {
 public:
  key_codec() = default;
  explicit key_codec(store::keyring ring) : ring_(std::move(ring)) {}

  bool encrypting() const { return ring_.has_value(); }
  std::string current_key_id() const { return ring_ ? ring_->current_id() : std::string(); }

  std::string to_stored(const std::string& key, const std::string& user_id, store::key_kind kind) const;

  // The key, or nullopt with a reason in `error` (never key material).
  std::optional<std::string> from_stored(const std::string& stored, const std::string& user_id,
                                         store::key_kind kind, std::string& error) const;

 private:
  static std::string binding(const std::string& user_id, store::key_kind kind);
  std::optional<store::keyring> ring_;
};

}  // namespace esd::db
