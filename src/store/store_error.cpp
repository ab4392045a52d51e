#include "store/store_error.hpp"

#include <boost/json.hpp>

#include "store/json_fields.hpp"

namespace esd::store {
namespace {

namespace json = boost::json;

constexpr std::size_t max_message = 300;

// Up to max_message bytes of text a log line can carry: line breaks and tabs become single spaces,
// other control characters are dropped, and a cut never splits a UTF-8 sequence.
std::string clean_message(std::string_view text) {
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n' || c == '\r' || c == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else if (c >= 0x20 && c != 0x7f) {
      out += ch;
    }
    if (out.size() >= max_message) break;
  }
  // Back off over continuation bytes, then drop the lead byte if its sequence no longer fits.
  if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0x80)) {
    std::size_t i = out.size();
    while (i > 0 && (static_cast<unsigned char>(out[i - 1]) & 0xC0) == 0x80) --i;
    if (i > 0) {
      auto lead = static_cast<unsigned char>(out[i - 1]);
      std::size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (out.size() - (i - 1) < need) out.resize(i - 1);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// "code" is a string in every documented answer; a number is kept as its digits rather than lost.
std::string code_of(const json::object& o) {
  const json::value* v = o.if_contains("code");
  if (!v) return {};
  if (v->is_string()) return clean_message(v->get_string());
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  return {};
}

std::string message_of(const json::object& o) {
  const json::value* v = o.if_contains("message");
  return v && v->is_string() ? clean_message(v->get_string()) : std::string{};
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
  out.message = clean_message(body);
  return out;
}

}  // namespace esd::store
