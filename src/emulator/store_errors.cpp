#include "emulator/store_errors.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

namespace esd::emulator {

namespace json = boost::json;

namespace {

// The top-level code and message the Store pairs with an HTTP status.
std::pair<std::string_view, std::string_view> outer_for(http::status status) {
  switch (status) {
    case http::status::bad_request:
      return {"BadRequest", "The request is invalid."};
    case http::status::unauthorized:
      return {"Unauthorized", "The client is not authorized to perform the requested operation."};
    case http::status::forbidden:
      return {"Forbidden", "The client is not allowed to perform the requested operation."};
    case http::status::not_found:
      return {"NotFound", "The requested resource was not found."};
    case http::status::method_not_allowed:
      return {"MethodNotAllowed", "The requested method is not allowed on this resource."};
    case http::status::conflict:
      return {"Conflict", "The request conflicts with the current state of the resource."};
    case http::status::payload_too_large:
      return {"RequestEntityTooLarge", "The request body is too large."};
    case http::status::too_many_requests:
      return {"TooManyRequests", "The rate limit has been exceeded."};
    case http::status::service_unavailable:
      return {"ServiceUnavailable", "The service is unavailable."};
    case http::status::gateway_timeout:
      return {"GatewayTimeout", "The service timed out."};
    default:
      if (static_cast<unsigned>(status) >= 500)
        return {"InternalServerError", "The service has encountered an unknown internal server error."};
      return {"BadRequest", "The request is invalid."};
  }
}

}  // namespace

http_response store_error(http::status status, std::string_view inner_code, std::string_view detail,
                          std::string_view source) {
  const auto [code, message] = outer_for(status);
  json::object inner;
  inner["code"] = inner_code;
  inner["data"] = json::array{};
  inner["details"] = json::array{};
  inner["message"] = detail;
  json::object body;
  body["code"] = code;
  body["data"] = json::array{};
  body["details"] = json::array{};
  body["innererror"] = std::move(inner);
  body["message"] = message;
  body["source"] = source;
  auto res = json_response(status, body);
  add_store_headers(res);
  return res;
}

http_response recurrences_server_error(http::status status) {
  json::object inner;
  inner["code"] = "UnknownInternalFailure";
  inner["data"] = json::array{};
  inner["details"] = json::array{};
  inner["message"] =
      "The service has encountered an unknown internal server error: System.NullReferenceException: Object "
      "reference not set to an instance of an object. (fault injected by the emulator)";
  json::object body;
  body["code"] = outer_for(status).first;
  body["data"] = json::array{};
  body["details"] = json::array{};
  body["innererror"] = std::move(inner);
  auto res = json_response(status, body);
  add_store_headers(res);
  return res;
}

http_response rate_limited(int operations, int window_seconds, int retry_after_seconds) {
  auto res = text_response(http::status::too_many_requests,
                           "The rate limit of " + std::to_string(operations) + " operations in " +
                               std::to_string(window_seconds) +
                               " seconds has been exceeded for aspect userId;publisherId.");
  res.set(http::field::retry_after, std::to_string(retry_after_seconds < 1 ? 1 : retry_after_seconds));
  add_store_headers(res);
  return res;
}

void add_store_headers(http_response& res) {
  res.set("MS-CorrelationId", random_guid());
  res.set("MS-RequestId", random_guid());
  res.set("MS-CV", "emu." + random_guid().substr(0, 8) + ".0");
}

}  // namespace esd::emulator
