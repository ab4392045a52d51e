// The purchase.mp endpoints, keyed by a purchase key (UserPurchaseId) in b2bKey:
// POST /v6.0/purchases/grant puts a free product of the catalogue into the player's collection (idempotent
// by orderId, as the Store is), and POST /v8.0/b2b/recurrences/query pages through the player's
// subscriptions (recurrences_query.cpp). Same checks (store_auth) and per-player rate limit as the
// collections endpoints.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "emulator/emulator_state.hpp"
#include "emulator/entra.hpp"
#include "emulator/http_types.hpp"
#include "emulator/store_auth.hpp"
#include "emulator/store_keys.hpp"

namespace esd::emulator {

class purchase_service {
 public:
  purchase_service(emulator_state& state, const emulator_config& config, const entra_issuer& entra,
                   const store_key_authority& keys);

  http_response grant(const http_request& req);
  http_response recurrences_query(const http_request& req);

 private:
  // Continuation tokens carry the last id served and a MAC over it and the player, so a token this instance
  // did not issue, or issued for another player, is refused.
  std::string continuation_token(const std::string& player_id, const std::string& last_id) const;
  std::optional<std::string> last_id_of(const std::string& player_id, std::string_view token) const;
  std::string mac_hex(const std::string& player_id, const std::string& last_id) const;
  // The body's b2bKey, a purchase key we minted for the token's client and still current; otherwise
  // nullopt and the 400 or 401 to send in `failure`.
  std::optional<store_key_spec> purchase_key_of(const store_post& call, http_response& failure) const;

  emulator_state& state_;
  const emulator_config& config_;
  const store_auth auth_;
  std::array<unsigned char, 32> token_key_{};
};

}  // namespace esd::emulator
