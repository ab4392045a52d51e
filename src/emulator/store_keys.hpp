// Microsoft Store ID keys (UserCollectionsId / UserPurchaseId) as the emulator mints and checks them:
// RS256 JWTs with the same claims as the real ones. The player a key belongs to travels inside the key,
// AES-GCM-sealed in the payload claim, and the userId claim is an opaque hash of the player id.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "emulator/jwt_signer.hpp"
#include "store/store_id_key.hpp"

namespace esd::emulator {

inline constexpr std::string_view collections_key_audience = "https://collections.mp.microsoft.com/v6.0/keys";
inline constexpr std::string_view purchase_key_audience = "https://purchase.mp.microsoft.com/v6.0/keys";

struct store_key_spec {
  std::string player_id;
  store::key_kind kind = store::key_kind::collections;
  std::int64_t issued_at = 0;   // iat; nbf is iat - 3600, like the GDK example
  std::int64_t expires_at = 0;  // exp
  std::string client_id;
  std::string refresh_uri;
};

class store_key_authority {
 public:
  explicit store_key_authority(const jwt_signer& signer);

  std::string mint(const store_key_spec& spec) const;

  // What a key this instance minted says, signature checked, expiry NOT checked (callers decide);
  // nullopt for a malformed or foreign key. Never throws.
  std::optional<store_key_spec> read(std::string_view key) const;

  // The opaque userId claim for a player: base64 of SHA-256, 44 characters like the real claim.
  static std::string opaque_user_id(std::string_view player_id);

 private:
  std::string seal(std::string_view player_id) const;
  std::optional<std::string> unseal(std::string_view payload) const;

  const jwt_signer& signer_;
  std::array<unsigned char, 32> payload_key_{};
};

}  // namespace esd::emulator
