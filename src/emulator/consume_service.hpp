// POST /v6.0/collections/consume (report-consumable-products-as-fulfilled.md): report a consumable as
// fulfilled, by itemId + trackingId or by productId + transactionId, keyed by a collections key in
// beneficiary.identityValue. The item's quantity drops to 0 and its modifiedDate moves, so the next
// collections query shows it; a repeated tracking id gets 204 again and changes nothing.
#pragma once

#include "emulator/emulator_state.hpp"
#include "emulator/entra.hpp"
#include "emulator/http_types.hpp"
#include "emulator/store_auth.hpp"
#include "emulator/store_keys.hpp"

namespace esd::emulator {

class consume_service {
 public:
  consume_service(emulator_state& state, const entra_issuer& entra, const store_key_authority& keys)
      : state_(state), auth_(entra, keys) {}

  http_response consume(const http_request& req);

 private:
  emulator_state& state_;
  const store_auth auth_;
};

}  // namespace esd::emulator
