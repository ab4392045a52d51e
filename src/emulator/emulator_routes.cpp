#include "emulator/emulator_routes.hpp"

#include <boost/json/object.hpp>
#include <charconv>
#include <iostream>

#include "emulator/page_faults.hpp"
#include "emulator/content_faults.hpp"
#include "emulator/store_errors.hpp"

namespace esd::emulator {

namespace json = boost::json;

namespace {

constexpr std::string_view query_path = "/v6.0/collections/query";
constexpr std::string_view consume_path = "/v6.0/collections/consume";
constexpr std::string_view renew_path = "/v6.0/b2b/keys/renew";
constexpr std::string_view grant_path = "/v6.0/purchases/grant";
constexpr std::string_view recurrences_path = "/v8.0/b2b/recurrences/query";

bool is_store_path(std::string_view path) {
  return path == query_path || path == consume_path || path == renew_path || path == grant_path ||
         path == recurrences_path;
}

// Which service's name an error from this path carries (a renewal's depends on its key; a fault cannot
// tell, so it says CollectionsFD).
std::string_view source_of(std::string_view path) {
  return path == grant_path || path == recurrences_path ? purchase_source : collections_source;
}

// A JSON text cut short, for the "malformed" and "truncate" faults.
std::string broken_json(bool entra_path) {
  if (entra_path)
    return R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAiOiJKV1Q)";
  return R"({"items":[{"acquiredDate":"2015-09-22T19:22:51.2068724+00:00","devOfferId":"f9587c53-540a-498b-a281-)";
}

}  // namespace

routed_answer emulator_routes::route(const http_request& req) {
  const std::string_view path = target_path(req);
  try {
    return handle(req, path);
  } catch (const std::exception& e) {
    std::cerr << "entitlement-store-emulator: handler for " << req.method_string() << " " << path
              << " failed: " << e.what() << "\n";
    routed_answer a;
    a.response = store_error(http::status::internal_server_error, "UnknownInternalFailure",
                             "The service has encountered an unknown internal server error.");
    a.counted = !path.starts_with(control_prefix);
    return a;
  }
}

routed_answer emulator_routes::handle(const http_request& req, std::string_view path) {
  if (path.starts_with(control_prefix) || path == "/_emulator") {
    routed_answer a;
    a.response = control_.handle(req);
    return a;
  }

  std::string tenant;
  bool v2 = false;
  const bool entra_path = entra_issuer::is_token_path(path, tenant, v2);
  const bool store_path = is_store_path(path);
  // The player a Store request is for, when its key is one we minted (a signature check; it also gives
  // faults aimed at one player their target).
  std::optional<std::string> player;
  if (store_path) player = store_.player_of(req);

  std::optional<fault_rule> fault;
  request_in_flight in_flight;
  {
    std::lock_guard lock(state_.mutex);
    // Bounded, so a client probing random paths cannot grow the stats without end.
    auto& by_path = state_.stats.requests_by_path;
    const bool known =
        entra_path || store_path || by_path.contains(std::string(path)) || by_path.size() < 1000;
    ++by_path[known ? std::string(path) : std::string("(other)")];
    if (player) {
      if (const auto it = state_.not_before.find(*player);
          it != state_.not_before.end() && std::chrono::steady_clock::now() < it->second)
        ++state_.stats.early_after_retry_after;
      if (state_.requests_in_flight[*player]++ > 0) ++state_.stats.user_overlaps;
      in_flight = request_in_flight(state_, *player);
    }
    fault = state_.faults.take(path, player);
    if (fault) ++state_.stats.faults_injected[std::string(to_string(fault->mode))];
    const bool served = !fault || fault->mode == fault_mode::drop_after || is_content_fault(fault->mode);
    if (served && entra_path) ++state_.stats.token_requests;
  }
  routed_answer a;
  if (fault && fault->mode != fault_mode::drop_after && !is_content_fault(fault->mode)) {
    a = inject(*fault, path, entra_path, req);
  } else {
    a.delayed = a.counted = true;
    serve(req, path, entra_path, tenant, v2, a);
    if (fault && is_content_fault(fault->mode)) {
      apply_content_fault(*fault, a.response);
    } else if (fault) {
      // drop_after: the request took effect (a grant granted, a consume consumed), the answer is lost.
      a.how = delivery::drop;
    }
  }
  a.player = std::move(player);
  a.in_flight = std::move(in_flight);
  return a;
}

void emulator_routes::serve(const http_request& req, std::string_view path, bool entra_path,
                             const std::string& tenant, bool v2, routed_answer& a) {
  if (entra_path)
    a.response = entra_.token(req, tenant, v2);
  else if (path == query_path)
    a.response = store_.collections_query(req);
  else if (path == renew_path)
    a.response = store_.renew_key(req);
  else if (path == consume_path)
    a.response = consume_.consume(req);
  else if (path == grant_path)
    a.response = purchase_.grant(req);
  else if (path == recurrences_path)
    a.response = purchase_.recurrences_query(req);
  else {
    a.response = json_response(http::status::not_found,
                               json::object{{"error", "not found"}, {"path", std::string(path)}});
    a.delayed = false;
  }
}

routed_answer emulator_routes::inject(const fault_rule& fault, std::string_view path, bool entra_path,
                                      const http_request& req) {
  routed_answer a;
  a.delayed = a.counted = true;
  switch (fault.mode) {
    case fault_mode::drop:
      a.how = delivery::drop;
      return a;
    case fault_mode::hang:
      a.how = delivery::hang;
      return a;
    case fault_mode::truncate:
    case fault_mode::malformed: {
      a.how = fault.mode == fault_mode::truncate ? delivery::truncate : delivery::respond;
      a.response = http_response{http::status::ok, 11};
      a.response.set(http::field::content_type, "application/json; charset=utf-8");
      a.response.set(http::field::date, http_date_now());
      a.response.body() = broken_json(entra_path);
      a.response.prepare_payload();
      return a;
    }
    case fault_mode::echo:
      a.response = http_response{static_cast<http::status>(fault.status), 11};
      a.response.set(http::field::content_type, "text/plain; charset=utf-8");
      a.response.set(http::field::date, http_date_now());
      a.response.body() = req.body();
      a.response.prepare_payload();
      return a;
    case fault_mode::cycle:
    case fault_mode::huge:
      a.response = page_fault_answer(fault, path == recurrences_path, req);
      return a;
    case fault_mode::status:
    case fault_mode::drop_after:  // handled by the caller: the real answer, then the drop
    case fault_mode::nul_text:    // the content modes too: the real answer, made hostile
    case fault_mode::bad_utf8_text:
    case fault_mode::giant_text:
    case fault_mode::number:
    case fault_mode::bad_utf8_error:
      break;
  }
  const std::string_view source = source_of(path);
  const auto status = static_cast<http::status>(fault.status);
  if (fault.status == 429 && !entra_path) {
    std::lock_guard lock(state_.mutex);
    a.response = rate_limited(state_.budget.operations(), state_.budget.window_seconds(),
                              fault.retry_after.value_or(1));
  } else if (entra_path) {
    a.response = entra_error(
        status, fault.status >= 500 || fault.status == 429 ? "temporarily_unavailable" : "invalid_request",
        90033, "A transient error has occurred. Please try again.");
  } else if (fault.status >= 500 && path == recurrences_path) {
    a.response = recurrences_server_error(status);
  } else if (fault.status >= 500) {
    a.response =
        store_error(status, "UnknownInternalFailure",
                    "The service has encountered an unknown internal server error (fault injected by the "
                    "emulator).",
                    source);
  } else if (fault.status == 401) {
    a.response =
        store_error(status, "AuthenticationTokenInvalid",
                    "Authentication token supplied is invalid (fault injected by the emulator).", source);
  } else {
    a.response = store_error(status, "InjectedFault", "Fault injected by the emulator.", source);
  }
  if (fault.retry_after) a.response.set(http::field::retry_after, std::to_string(*fault.retry_after));
  return a;
}

void request_in_flight::release() {
  if (!state_) return;
  std::lock_guard lock(state_->mutex);
  if (const auto it = state_->requests_in_flight.find(user_); it != state_->requests_in_flight.end() &&
                                                              --it->second <= 0)
    state_->requests_in_flight.erase(it);
  state_ = nullptr;
}

void emulator_routes::sending(routed_answer& answer) {
  answer.in_flight.release();
  if (!answer.player || answer.how != delivery::respond ||
      answer.response.result() != http::status::too_many_requests)
    return;
  const auto header = answer.response.find(http::field::retry_after);
  if (header == answer.response.end()) return;
  const std::string_view text = header->value();
  int seconds = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc{} || end != text.data() + text.size() || seconds < 0) return;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::lock_guard lock(state_.mutex);
  auto& not_before = state_.not_before[*answer.player];
  if (until > not_before) not_before = until;
  ++state_.stats.retry_afters_sent;
}

std::chrono::milliseconds emulator_routes::latency() {
  std::lock_guard lock(state_.mutex);
  return std::chrono::milliseconds(state_.latency_ms);
}

void emulator_routes::record(const http_request& req, const routed_answer& answer,
                             std::chrono::steady_clock::duration took) {
  std::string outcome;
  switch (answer.how) {
    case delivery::respond:
      outcome = std::to_string(answer.response.result_int());
      break;
    case delivery::drop:
      outcome = "drop";
      break;
    case delivery::truncate:
      outcome = "truncate";
      break;
    case delivery::hang:
      outcome = "hang";
      break;
  }
  if (answer.counted && answer.how == delivery::respond) {
    std::lock_guard lock(state_.mutex);
    ++state_.stats.status_counts[outcome];
  }
  if (config_.log_requests) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
    // The path only: never the query string, a header or a body (they may carry tokens and keys).
    std::string line = std::string(req.method_string()) + " " + std::string(target_path(req)) + " " +
                       outcome + " " + std::to_string(ms) + "ms\n";
    std::cerr << line << std::flush;
  }
}

void emulator_routes::record_unreadable(unsigned status) {
  {
    std::lock_guard lock(state_.mutex);
    ++state_.stats.status_counts[std::to_string(status)];
  }
  if (config_.log_requests)
    std::cerr << ("- (unreadable request) " + std::to_string(status) + "\n") << std::flush;
}

void emulator_routes::record_handshake() {
  std::lock_guard lock(state_.mutex);
  ++state_.stats.tls_handshakes;
}

}  // namespace esd::emulator
