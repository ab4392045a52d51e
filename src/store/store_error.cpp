#include "store/store_error.hpp"

#include <boost/json.hpp>

#include "store/error_text.hpp"
#include "store/json_fields.hpp"

namespace esd::store {
namespace {

namespace json = boost::json;

constexpr std::size_t max_message = 300;

// "code" is a string in every documented answer; a number is kept as its digits rather than lost.
std::string code_of(const json::object& o) {
  const json::value* v = o.if_contains("code");
  if (!v) return {};
  if (v->is_string()) return excerpt(v->get_string(), max_message);
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  return {};
}

std::string message_of(const json::object& o) {
  const json::value* v = o.if_contains("message");
  return v && v->is_string() ? excerpt(v->get_string(), max_message) : std::string{};
}

}  // namespace

store_error_body parse_store_error_body(std::string_view body) {
  store_error_body out;
  std::string ignored;
  auto doc = parse_json_document(body, ignored);
  const json::object* envelope = doc ? doc->if_object() : nullptr;
  // Azure-style answers wrap the same fields in {"error":{...}}.
  if (envelope) {
    if (const json::value* e = envelope->if_contains("error"); e && e->is_object())
      envelope = &e->get_object();
  }
  if (envelope &&
      (envelope->contains("code") || envelope->contains("message") || envelope->contains("innererror"))) {
    out.code = code_of(*envelope);
    out.message = message_of(*envelope);
    if (const json::value* inner = envelope->if_contains("innererror"); inner && inner->is_object()) {
      out.inner_code = code_of(inner->get_object());
      if (out.message.empty()) out.message = message_of(inner->get_object());
    }
    return out;
  }
  // Not our shape (the 429 text template, an HTML page from a proxy, another service's JSON): the start
  // of the body is still the best description of what happened.
  out.message = excerpt(body, max_message);
  return out;
}

}  // namespace esd::store
