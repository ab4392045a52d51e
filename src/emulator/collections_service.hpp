// The Store endpoints: POST /v6.0/collections/query (a player's entitlements, paged) and
// POST /v6.0/b2b/keys/renew (a fresh Store ID key for one about to expire), with the Store's checks
// (Entra token audience and expiry, Store ID key signature, kind, expiry, client id: see store_auth) and its
// per-player rate limit. The purchase side and consume are in purchase_service and consume_service.
#pragma once

#include <optional>
#include <string>

#include "emulator/emulator_state.hpp"
#include "emulator/entra.hpp"
#include "emulator/http_types.hpp"
#include "emulator/store_auth.hpp"
#include "emulator/store_keys.hpp"

namespace esd::emulator {

class store_service {
 public:
  store_service(emulator_state& state, const emulator_config& config, const entra_issuer& entra,
                const store_key_authority& keys)
      : state_(state), config_(config), auth_(entra, keys), keys_(keys) {}

  http_response collections_query(const http_request& req);
  http_response renew_key(const http_request& req);

  // The player a Store request is about, read from the key in its body without judging it (for faults
  // aimed at one player); nullopt when there is no key this instance minted.
  std::optional<std::string> player_of(const http_request& req) const;

 private:
  emulator_state& state_;
  const emulator_config& config_;
  const store_auth auth_;
  const store_key_authority& keys_;
};

}  // namespace esd::emulator
