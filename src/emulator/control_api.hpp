// The test-only control API under /_emulator/: mint keys, revoke the access tokens issued so far, change players' items and subscriptions, set the
// catalog of free products grants may grant, list the grant orders, inject faults, change latency and
// budget, read and reset the counters. JSON in and out, no authentication; never delayed, rate limited or
// faulted. main.cpp's --help lists the endpoints.
#pragma once

#include "emulator/emulator_state.hpp"
#include "emulator/entra.hpp"
#include "emulator/http_types.hpp"
#include "emulator/store_keys.hpp"

namespace esd::emulator {

inline constexpr std::string_view control_prefix = "/_emulator/";

class control_api {
 public:
  control_api(emulator_state& state, const emulator_config& config, const store_key_authority& keys,
              entra_issuer& entra)
      : state_(state), config_(config), keys_(keys), entra_(entra) {}

  http_response handle(const http_request& req);

 private:
  http_response mint_key(const http_request& req);
  http_response put_items(const http_request& req, const std::string& user_id);
  http_response update_item(const http_request& req, const std::string& user_id, const std::string& item_id);
  http_response list_items(const std::string& user_id);
  http_response put_subscriptions(const http_request& req, const std::string& user_id);
  http_response list_subscriptions(const std::string& user_id);
  http_response put_catalog(const http_request& req);
  http_response add_fault(const http_request& req);
  http_response settings(const http_request& req);

  emulator_state& state_;
  const emulator_config& config_;
  const store_key_authority& keys_;
  entra_issuer& entra_;
};

}  // namespace esd::emulator
