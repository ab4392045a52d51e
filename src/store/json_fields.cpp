#include "store/json_fields.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <limits>

#include "store/error_text.hpp"

namespace esd::store {

namespace json = boost::json;

std::string quoted_excerpt(std::string_view s, std::size_t max_bytes) {
  return "\"" + excerpt(s, max_bytes) + "\"";
}

std::optional<json::value> parse_json_document(std::string_view text, std::string& error, json::storage_ptr sp) {
  json::error_code ec;
  json::value v;
  try {
    v = json::parse(text, ec, std::move(sp));
  } catch (const std::exception& e) {  // parse reports syntax errors in ec; only allocation throws
    error = std::string("the answer could not be read: ") + e.what();
    return std::nullopt;
  }
  if (ec) {
    error = text.empty() ? "the answer is empty, not JSON"
                         : "the answer is not valid JSON (" + ec.message() + ")";
    return std::nullopt;
  }
  return v;
}

json_fields::json_fields(const json::object& object, std::string where)
    : object_(object), where_(std::move(where)) {}

void json_fields::fail(std::string_view key, std::string_view problem) {
  if (!error_.empty()) return;  // the first problem is the one worth reporting
  if (!where_.empty()) error_ = where_ + ": ";
  error_ += std::string(key) + " " + std::string(problem);
}

void json_fields::refuse(std::string_view key, std::string_view problem) {
  if (ok()) value_refused_ = true;
  fail(key, problem);
}

bool json_fields::text_refused(std::string_view key, std::string_view value, std::size_t max_bytes) {
  if (value.find('\0') != std::string_view::npos) {
    refuse(key, "contains a NUL character (\\u0000), which PostgreSQL cannot store");
    return true;
  }
  if (value.size() > max_bytes) {
    refuse(key, "is " + std::to_string(value.size()) + " bytes long, more than the " + std::to_string(max_bytes) +
                    " accepted");
    return true;
  }
  return false;
}

const json::value* json_fields::find(std::string_view key) const {
  const json::value* v = object_.if_contains(key);
  return (v && !v->is_null()) ? v : nullptr;
}

std::string json_fields::text(std::string_view key, std::size_t max_bytes) {
  const json::value* v = find(key);
  if (!v) return {};
  if (!v->is_string()) {
    fail(key, "is not a string");
    return {};
  }
  if (text_refused(key, v->get_string(), max_bytes)) return {};
  return std::string(v->get_string());
}

std::string json_fields::required_text(std::string_view key, std::size_t max_bytes) {
  if (!find(key)) {
    fail(key, "is missing");
    return {};
  }
  std::string s = text(key, max_bytes);
  if (s.empty() && ok()) fail(key, "is empty");
  return s;
}

std::optional<std::int32_t> json_fields::int32(std::string_view key) {
  const json::value* v = find(key);
  if (!v) return std::nullopt;
  constexpr auto lo = std::numeric_limits<std::int32_t>::min(), hi = std::numeric_limits<std::int32_t>::max();
  if (v->is_int64() && v->get_int64() >= lo && v->get_int64() <= hi)
    return static_cast<std::int32_t>(v->get_int64());
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(hi))
    return static_cast<std::int32_t>(v->get_uint64());
  if (v->is_number()) {
    refuse(key, "is out of range (" + json::serialize(*v) + ")");
  } else {
    fail(key, "is not an integer");
  }
  return std::nullopt;
}

std::optional<std::int32_t> json_fields::non_negative_int32(std::string_view key) {
  auto n = int32(key);
  if (n && *n < 0) {
    refuse(key, "is negative (" + std::to_string(*n) + ")");
    return std::nullopt;
  }
  return n;
}

std::optional<bool> json_fields::boolean(std::string_view key) {
  const json::value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_bool()) {
    fail(key, "is not true or false");
    return std::nullopt;
  }
  return v->get_bool();
}

std::optional<store_time> json_fields::date(std::string_view key) {
  const json::value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail(key, "is not a date (not a string)");
    return std::nullopt;
  }
  auto t = parse_store_date(v->get_string());
  if (!t) fail(key, "is not a date: " + quoted_excerpt(v->get_string()));
  return t;
}

std::optional<store_time> json_fields::required_date(std::string_view key) {
  if (!find(key)) {
    fail(key, "is missing");
    return std::nullopt;
  }
  return date(key);
}

std::optional<std::int64_t> json_fields::timespan_micros(std::string_view key) {
  const json::value* v = find(key);
  if (!v) return std::nullopt;
  std::optional<std::int64_t> micros;
  if (v->is_string()) micros = parse_timespan_micros(v->get_string());
  if (!micros) fail(key, "is not a time span like \"1.02:03:04.5\"");
  return micros;
}

std::vector<std::string> json_fields::texts(std::string_view key, std::size_t max_bytes) {
  std::vector<std::string> out;
  const json::value* v = find(key);
  if (!v) return out;
  if (!v->is_array()) {
    fail(key, "is not an array");
    return out;
  }
  if (v->get_array().size() > max_list_elements) {
    refuse(key, "has " + std::to_string(v->get_array().size()) + " elements, more than the " +
                    std::to_string(max_list_elements) + " accepted");
    return out;
  }
  for (const auto& e : v->get_array()) {
    if (!e.is_string()) {
      fail(key, "has an element that is not a string");
      return {};
    }
    if (text_refused(key, e.get_string(), max_bytes)) return {};
    out.emplace_back(e.get_string());
  }
  return out;
}

const json::object* json_fields::object(std::string_view key) {
  const json::value* v = find(key);
  if (!v) return nullptr;
  if (!v->is_object()) fail(key, "is not an object");
  return v->if_object();
}

}  // namespace esd::store
