// Which handler answers a request, and how: the Store and Entra endpoints (delayed by the configured
// latency, counted in the stats, subject to injected faults) and the control API (none of those).
#pragma once

#include <chrono>
#include <string>

#include "emulator/collections_service.hpp"
#include "emulator/control_api.hpp"
#include "emulator/emulator_state.hpp"
#include "emulator/entra.hpp"
#include "emulator/http_types.hpp"

namespace esd::emulator {

enum class delivery {
  respond,   // send `response`
  drop,      // close the connection without answering
  truncate,  // send `response`'s head with a Content-Length beyond its body, then close
  hang,      // never answer; close when the client gives up
};

struct routed_answer {
  http_response response;
  delivery how = delivery::respond;
  bool delayed = false;  // Store and Entra answers wait the configured latency first
  bool counted = false;  // shows in the stats (everything but the control API)
};

class emulator_routes {
 public:
  emulator_routes(emulator_state& state, const emulator_config& config, const entra_issuer& entra,
                  store_service& store, control_api& control)
      : state_(state), config_(config), entra_(entra), store_(store), control_(control) {}

  // Never throws: a handler's exception becomes a 500.
  routed_answer route(const http_request& req);

  std::chrono::milliseconds latency();

  // After the answer went out (or did not): status counts and the --log-requests line.
  void record(const http_request& req, const routed_answer& answer, std::chrono::steady_clock::duration took);
  // A request the server could not read (too large, not HTTP): logged, counted under its status.
  void record_unreadable(unsigned status);
  void record_handshake();

 private:
  routed_answer handle(const http_request& req, std::string_view path);
  routed_answer inject(const fault_rule& fault, bool entra_path);

  emulator_state& state_;
  const emulator_config& config_;
  const entra_issuer& entra_;
  store_service& store_;
  control_api& control_;
};

}  // namespace esd::emulator
