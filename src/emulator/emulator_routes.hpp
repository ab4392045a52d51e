// Which handler answers a request, and how: the Store and Entra endpoints (delayed by the configured
// latency, counted in the stats, subject to injected faults) and the control API (none of those).
// Store paths: /v6.0/collections/query, /v6.0/collections/consume, /v6.0/b2b/keys/renew (collections.mp) and
// /v6.0/purchases/grant, /v8.0/b2b/recurrences/query (purchase.mp), all on the one port.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "emulator/collections_service.hpp"
#include "emulator/consume_service.hpp"
#include "emulator/control_api.hpp"
#include "emulator/emulator_state.hpp"
#include "emulator/entra.hpp"
#include "emulator/http_types.hpp"
#include "emulator/purchase_service.hpp"

namespace esd::emulator {

enum class delivery {
  respond,   // send `response`
  drop,      // close the connection without answering
  truncate,  // send `response`'s head with a Content-Length beyond its body, then close
  hang,      // never answer; close when the client gives up
};

// One Store request of a player being answered, for the userOverlaps stat: it counts from the moment the
// request is routed until its answer starts going out, the connection is dropped, or the client gives up
// on a hang. Releasing before the answer is written means a client can never have seen the answer while
// the request still counts, so an overlap is always real.
class request_in_flight {
 public:
  request_in_flight() = default;
  // Takes over one count in state.requests_in_flight[user] that the caller added under the state's mutex.
  request_in_flight(emulator_state& state, std::string user) : state_(&state), user_(std::move(user)) {}
  request_in_flight(request_in_flight&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)), user_(std::move(other.user_)) {}
  request_in_flight& operator=(request_in_flight&& other) noexcept {
    if (this != &other) {
      release();
      state_ = std::exchange(other.state_, nullptr);
      user_ = std::move(other.user_);
    }
    return *this;
  }
  request_in_flight(const request_in_flight&) = delete;
  request_in_flight& operator=(const request_in_flight&) = delete;
  ~request_in_flight() { release(); }
  void release();

 private:
  emulator_state* state_ = nullptr;
  std::string user_;
};

struct routed_answer {
  http_response response;
  delivery how = delivery::respond;
  bool delayed = false;  // Store and Entra answers wait the configured latency first
  bool counted = false;  // shows in the stats (everything but the control API)
  std::optional<std::string> player;  // whose Store request this is, when its key is one we minted
  request_in_flight in_flight;        // see request_in_flight
};

class emulator_routes {
 public:
  emulator_routes(emulator_state& state, const emulator_config& config, const entra_issuer& entra,
                  store_service& store, purchase_service& purchase, consume_service& consume,
                  control_api& control)
      : state_(state),
        config_(config),
        entra_(entra),
        store_(store),
        purchase_(purchase),
        consume_(consume),
        control_(control) {}

  // Never throws: a handler's exception becomes a 500.
  routed_answer route(const http_request& req);

  std::chrono::milliseconds latency();

  // Just before the answer goes out (or the connection is dropped): the request stops counting as in
  // flight, and a 429 with Retry-After sets when its player may ask again.
  void sending(routed_answer& answer);

  // After the answer went out (or did not): status counts and the --log-requests line.
  void record(const http_request& req, const routed_answer& answer, std::chrono::steady_clock::duration took);
  // A request the server could not read (too large, not HTTP): logged, counted under its status.
  void record_unreadable(unsigned status);
  void record_handshake();

 private:
  routed_answer handle(const http_request& req, std::string_view path);
  // The answer of a fault that replaces the real one (every mode but drop_after).
  routed_answer inject(const fault_rule& fault, const http_request& req, std::string_view path,
                       bool entra_path);
  // The real answer of an Entra or Store endpoint (no fault).
  void serve(const http_request& req, std::string_view path, bool entra_path, const std::string& tenant,
             bool v2, routed_answer& a);

  emulator_state& state_;
  const emulator_config& config_;
  const entra_issuer& entra_;
  store_service& store_;
  purchase_service& purchase_;
  consume_service& consume_;
  control_api& control_;
};

}  // namespace esd::emulator
