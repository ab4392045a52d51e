#include "emulator/content_faults.hpp"

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <utility>

namespace esd::emulator {

namespace json = boost::json;

namespace {

constexpr std::array<std::pair<std::string_view, fault_mode>, 5> modes{{
    {"nul_text", fault_mode::nul_text},
    {"bad_utf8_text", fault_mode::bad_utf8_text},
    {"giant_text", fault_mode::giant_text},
    {"number", fault_mode::number},
    {"bad_utf8_error", fault_mode::bad_utf8_error},
}};

// Stands for the invalid bytes until the body is serialized (a JSON serializer cannot write them).
constexpr std::string_view bad_utf8_marker = "@@emulator-bad-utf8@@";
// A lone continuation byte, a truncated sequence and two bytes that never occur in UTF-8.
constexpr std::string_view bad_utf8_bytes = "\x80\xC3\x28\xFE\xFF";

std::optional<std::int64_t> as_int(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v.get_uint64());
  return std::nullopt;
}

// The object whose field is made hostile: items[item] when the answer has items, else the answer itself.
json::object* target_of(json::value& doc, std::size_t item) {
  auto* top = doc.if_object();
  if (!top) return nullptr;
  if (auto* items = top->if_contains("items"); items && items->is_array()) {
    auto& arr = items->get_array();
    return item < arr.size() ? arr[item].if_object() : nullptr;
  }
  return top;
}

std::string original_text(const json::object& o, std::string_view field) {
  const auto* v = o.if_contains(field);
  return v && v->is_string() ? std::string(v->get_string()) : std::string("emulator");
}

void replace_marker(std::string& body) {
  for (auto at = body.find(bad_utf8_marker); at != std::string::npos; at = body.find(bad_utf8_marker, at))
    body.replace(at, bad_utf8_marker.size(), bad_utf8_bytes);
}

}  // namespace

std::optional<fault_mode> content_fault_mode(std::string_view name) {
  for (const auto& [n, m] : modes)
    if (n == name) return m;
  return std::nullopt;
}

std::string_view content_fault_name(fault_mode m) {
  for (const auto& [n, mode] : modes)
    if (mode == m) return n;
  return "status";
}

bool is_content_fault(fault_mode m) {
  for (const auto& [n, mode] : modes)
    if (mode == m) return true;
  return false;
}

bool read_content_fault_fields(const json::object& o, fault_rule& rule, std::string& error) {
  if (const auto* v = o.if_contains("field"); v && !v->is_null()) {
    if (!v->is_string() || v->get_string().empty()) {
      error = "\"field\" must be the name of a field of the answer, such as productId";
      return false;
    }
    rule.field = std::string(v->get_string());
  }
  if (const auto* v = o.if_contains("item"); v && !v->is_null()) {
    const auto n = as_int(*v);
    if (!n || *n < 0 || *n > 100'000) {
      error = "\"item\" must be an index into the answer's items";
      return false;
    }
    rule.item = static_cast<std::size_t>(*n);
  }
  if (const auto* v = o.if_contains("size"); v && !v->is_null()) {
    const auto n = as_int(*v);
    if (!n || *n < 1 || *n > (64 << 20)) {
      error = "\"size\" must be a number of bytes from 1 to 64 MiB";
      return false;
    }
    rule.size = static_cast<std::size_t>(*n);
  }
  if (const auto* v = o.if_contains("value"); v && !v->is_null()) {
    const auto n = as_int(*v);
    if (!n) {
      error = "\"value\" must be an integer";
      return false;
    }
    rule.value = *n;
  }
  if (rule.mode == fault_mode::bad_utf8_error && !o.contains("status")) rule.status = 400;
  return true;
}

void apply_content_fault(const fault_rule& rule, http_response& res) {
  if (rule.mode == fault_mode::bad_utf8_error) {
    // Not JSON (the bytes are not UTF-8), so a client falls back to the raw text; ESC, BEL and NUL as an
    // attempt to rewrite a terminal or cut a C string.
    res.result(static_cast<http::status>(rule.status));
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.body() = std::string(R"({"code":"BadRequest","message":"bad )") + std::string(bad_utf8_bytes) +
                 " \x1b[31mred\x1b[0m \x07 bell " + std::string("\0nul", 4) +
                 R"(","innererror":{"code":"InvalidParameter","message":"x)" + std::string(bad_utf8_bytes) +
                 R"("}})";
    res.prepare_payload();
    return;
  }
  json::error_code ec;
  json::value doc = json::parse(res.body(), ec);
  if (ec) return;  // not a JSON answer (an error template): served as it is
  json::object* target = target_of(doc, rule.item);
  if (!target) return;
  switch (rule.mode) {
    case fault_mode::nul_text:
      (*target)[rule.field] = original_text(*target, rule.field) + std::string("\0after-nul", 10);
      break;
    case fault_mode::bad_utf8_text:
      (*target)[rule.field] = original_text(*target, rule.field) + std::string(bad_utf8_marker);
      break;
    case fault_mode::giant_text:
      (*target)[rule.field] = std::string(rule.size, 'G');
      break;
    case fault_mode::number:
      (*target)[rule.field] = rule.value;
      break;
    default:
      return;
  }
  std::string body = json::serialize(doc);
  replace_marker(body);
  res.body() = std::move(body);
  res.prepare_payload();
}

}  // namespace esd::emulator
