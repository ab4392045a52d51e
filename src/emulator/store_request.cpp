#include "emulator/store_request.hpp"

#include <cctype>
#include <boost/json/parse.hpp>

namespace esd::emulator {

namespace json = boost::json;

std::optional<json::object> parse_body_object(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

const json::string* string_field(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v ? v->if_string() : nullptr;
}

std::string string_or_empty(const json::object& o, std::string_view name) {
  const auto* v = string_field(o, name);
  return v ? std::string(*v) : std::string();
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_guid(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

http_response bad_parameter(std::string_view detail, std::string_view source) {
  return store_error(http::status::bad_request, "InvalidParameter", detail, source);
}

}  // namespace esd::emulator
