// How keys are kept in user_keys: AES-256-GCM sealed when [security] key_encryption_key_file is set
// (bound to the row and column, so a value copied elsewhere does not open), plain text otherwise.
// Plain values written before encryption was turned on still open, and are sealed on their next write.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "store/key_sealing.hpp"
#include "store/store_id_key.hpp"

namespace esd::db {

// Thread-safe: the database worker threads seal and open while SIGHUP may swap in a re-read key ring.
class key_codec {
 public:
  key_codec() = default;
  explicit key_codec(store::keyring ring) : ring_(std::make_shared<const store::keyring>(std::move(ring))) {}

  bool encrypting() const { return ring() != nullptr; }
  std::string current_key_id() const {
    auto r = ring();
    return r ? r->current_id() : std::string();
  }

  // Replaces the key ring (SIGHUP re-read of [security] key_encryption_key_file).
  void replace_ring(store::keyring ring) {
    auto fresh = std::make_shared<const store::keyring>(std::move(ring));
    std::lock_guard lock(mutex_);
    ring_ = std::move(fresh);
  }

  std::string to_stored(const std::string& key, const std::string& user_id, store::key_kind kind) const;

  // The key, or nullopt with a reason in `error` (never key material).
  std::optional<std::string> from_stored(const std::string& stored, const std::string& user_id,
                                         store::key_kind kind, std::string& error) const;

 private:
  static std::string binding(const std::string& user_id, store::key_kind kind);
  std::shared_ptr<const store::keyring> ring() const {
    std::lock_guard lock(mutex_);
    return ring_;
  }
  mutable std::mutex mutex_;
  std::shared_ptr<const store::keyring> ring_;
};

// What compare-and-set on user_keys compares a key column with: the SHA-256 of its stored form, in hex
// (PostgreSQL computes the same with encode(sha256(convert_to(column, 'UTF8')), 'hex')). A claimed job
// holds these 64 characters instead of a second copy of each key.
std::string stored_key_fingerprint(std::string_view stored);

}  // namespace esd::db
