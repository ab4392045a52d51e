// Store error bodies: {"code":..,"message":..,"innererror":{"code":"AuthenticationTokenInvalid",..}}.
#pragma once

#include <string>
#include <string_view>

namespace esd::store {

struct store_error_body {
  std::string code;        // top-level "code", e.g. "Unauthorized", "BadRequest"
  std::string inner_code;  // innererror.code, e.g. "AuthenticationTokenInvalid", "InvalidParameter"
  std::string message;     // top-level or inner message, cut to 300 characters, control characters dropped
};

// Never fails: a body that is not JSON, or not this shape, yields empty fields (message = the first
// 300 printable characters of the body, for the 429 text template and similar).
store_error_body parse_store_error_body(std::string_view body);

}  // namespace esd::store
