#include "emulator/faults.hpp"

#include "emulator/content_faults.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

namespace esd::emulator {

namespace json = boost::json;

std::string_view to_string(fault_mode m) {
  switch (m) {
    case fault_mode::status:
      return "status";
    case fault_mode::drop:
      return "drop";
    case fault_mode::truncate:
      return "truncate";
    case fault_mode::malformed:
      return "malformed";
    case fault_mode::hang:
      return "hang";
    case fault_mode::drop_after:
      return "drop_after";
    case fault_mode::cycle:
      return "cycle";
    case fault_mode::huge:
      return "huge";
    case fault_mode::echo:
      return "echo";
    case fault_mode::nul_text:
    case fault_mode::bad_utf8_text:
    case fault_mode::giant_text:
    case fault_mode::number:
    case fault_mode::bad_utf8_error:
      return content_fault_name(m);
  }
  return "status";
}

namespace {

std::optional<std::int64_t> as_int(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() < 1'000'000'000ull) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double() && v->as_double() == static_cast<double>(static_cast<std::int64_t>(v->as_double())))
    return static_cast<std::int64_t>(v->as_double());
  return std::nullopt;
}

}  // namespace

std::optional<fault_rule> fault_plan::from_json(const json::value& body, std::string& error) {
  const auto* o = body.if_object();
  if (!o) {
    error = "the body must be a JSON object";
    return std::nullopt;
  }
  fault_rule rule;
  const auto* path = o->if_contains("path");
  if (!path || !path->is_string() || path->as_string().empty() || path->as_string().front() != '/') {
    error = "\"path\" must be a request path such as /v6.0/collections/query";
    return std::nullopt;
  }
  rule.path = std::string(path->as_string());
  if (const auto* v = o->if_contains("count")) {
    const auto n = as_int(v);
    if (!n || *n < 1 || *n > 1'000'000) {
      error = "\"count\" must be an integer from 1";
      return std::nullopt;
    }
    rule.remaining = static_cast<int>(*n);
  }
  if (const auto* v = o->if_contains("mode")) {
    const auto* s = v->if_string();
    if (s && *s == "status")
      rule.mode = fault_mode::status;
    else if (s && *s == "drop")
      rule.mode = fault_mode::drop;
    else if (s && *s == "truncate")
      rule.mode = fault_mode::truncate;
    else if (s && *s == "malformed")
      rule.mode = fault_mode::malformed;
    else if (s && *s == "hang")
      rule.mode = fault_mode::hang;
    else if (s && *s == "drop_after")
      rule.mode = fault_mode::drop_after;
    else if (s && *s == "cycle")
      rule.mode = fault_mode::cycle;
    else if (s && *s == "huge")
      rule.mode = fault_mode::huge;
    else if (s && *s == "echo")
      rule.mode = fault_mode::echo;
    else if (const auto content = s ? content_fault_mode(*s) : std::nullopt)
      rule.mode = *content;
    else {
      error = "\"mode\" must be one of status, drop, truncate, malformed, hang, drop_after, cycle, huge, echo, "
              "nul_text, bad_utf8_text, giant_text, number, bad_utf8_error";
      return std::nullopt;
    }
  }
  if (const auto* v = o->if_contains("status")) {
    const auto n = as_int(v);
    if (!n || *n < 200 || *n > 599) {
      error = "\"status\" must be an HTTP status from 200 to 599";
      return std::nullopt;
    }
    rule.status = static_cast<int>(*n);
  }
  if (const auto* v = o->if_contains("retryAfter"); v && !v->is_null()) {
    const auto n = as_int(v);
    if (!n || *n < 0 || *n > 86400) {
      error = "\"retryAfter\" must be a number of seconds";
      return std::nullopt;
    }
    rule.retry_after = static_cast<int>(*n);
  }
  if (const auto* v = o->if_contains("probability"); v && !v->is_null()) {
    const double p = v->is_number() ? v->to_number<double>() : -1.0;
    if (!(p > 0.0 && p <= 1.0)) {
      error = "\"probability\" must be a number above 0 and at most 1";
      return std::nullopt;
    }
    rule.probability = p;
  }
  if (const auto* v = o->if_contains("bytes"); v && !v->is_null()) {
    const auto n = as_int(v);
    if (!n || *n < 1 || *n > 256 * 1024 * 1024) {
      error = "\"bytes\" must be a size in bytes from 1 to 256 MB";
      return std::nullopt;
    }
    rule.bytes = static_cast<std::size_t>(*n);
  }
  if (rule.mode == fault_mode::huge && rule.bytes == 0) {
    error = "mode huge needs \"bytes\", the size of each page";
    return std::nullopt;
  }
  if (const auto* v = o->if_contains("userId"); v && !v->is_null()) {
    if (!v->is_string()) {
      error = "\"userId\" must be a string";
      return std::nullopt;
    }
    rule.user_id = std::string(v->as_string());
  }
  if (is_content_fault(rule.mode) && !read_content_fault_fields(*o, rule, error)) return std::nullopt;
  return rule;
}

std::optional<fault_rule> fault_plan::take(std::string_view path, const std::optional<std::string>& user_id) {
  for (auto it = rules_.begin(); it != rules_.end(); ++it) {
    const bool prefix = !it->path.empty() && it->path.back() == '*';
    const bool path_matches =
        prefix ? path.starts_with(std::string_view(it->path).substr(0, it->path.size() - 1))
               : path == it->path;
    if (!path_matches) continue;
    if (it->user_id && (!user_id || *user_id != *it->user_id)) continue;
    if (it->probability < 1.0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng_) >= it->probability)
      continue;  // this request is spared; a later rule may still match it
    fault_rule taken = *it;
    if (--it->remaining <= 0) rules_.erase(it);
    return taken;
  }
  return std::nullopt;
}

json::value fault_plan::to_json() const {
  json::array list;
  for (const auto& r : rules_) {
    json::object o{
        {"path", r.path}, {"count", r.remaining}, {"mode", to_string(r.mode)}, {"status", r.status}};
    o["probability"] = r.probability;
    o["retryAfter"] = r.retry_after ? json::value(*r.retry_after) : json::value(nullptr);
    o["userId"] = r.user_id ? json::value(*r.user_id) : json::value(nullptr);
    if (r.mode == fault_mode::huge) o["bytes"] = r.bytes;
    list.push_back(std::move(o));
  }
  return json::object{{"faults", std::move(list)}};
}

}  // namespace esd::emulator
