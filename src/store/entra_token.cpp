#include "store/entra_token.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>

#include "store/json_fields.hpp"

namespace esd::store {
namespace {

namespace json = boost::json;

// v1 sends expires_in as a string of digits, v2 as a number. Anything beyond a year is nonsense that
// would overflow once added to a clock, so it counts as malformed too.
std::optional<std::int64_t> seconds_value(const json::value& v) {
  constexpr std::int64_t max_lifetime = 366 * 86400;
  std::int64_t n = -1;
  if (v.is_int64()) {
    n = v.get_int64();
  } else if (v.is_uint64()) {
    return std::nullopt;  // only numbers beyond int64 land here
  } else if (v.is_string()) {
    std::string_view s = v.get_string();
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty() || s[0] == '-') return std::nullopt;
  }
  if (n < 0 || n > max_lifetime) return std::nullopt;
  return n;
}

// The shape of an answer, never its bytes: " (HTTP 400, text/html, 5120 bytes)".
std::string shape_of(const entra_token_answer& answer) {
  std::string_view type = answer.content_type.substr(0, answer.content_type.find(';'));
  while (!type.empty() && type.front() == ' ') type.remove_prefix(1);
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  // A media type is a short token/token; anything else is shown as what it is not.
  const bool media_type = !type.empty() && type.size() <= 64 &&
                          std::count(type.begin(), type.end(), '/') == 1 &&
                          std::all_of(type.begin(), type.end(), [](char c) {
                            return std::isalnum(static_cast<unsigned char>(c)) ||
                                   std::string_view("/.+-_").find(c) != std::string_view::npos;
                          });
  const std::string shown = type.empty() ? "no content type"
                            : media_type ? std::string(type)
                                         : "an unusual content type";
  return " (HTTP " + std::to_string(answer.status) + ", " + shown + ", " +
         std::to_string(answer.body.size()) + " bytes)";
}

// OAuth error codes are short lower-case identifiers (invalid_client, unauthorized_client); anything else
// may be an echo of the request and is not repeated.
std::string error_code_of(const json::value& v) {
  const auto* s = v.if_string();
  const bool identifier =
      s && !s->empty() && s->size() <= 40 && std::all_of(s->begin(), s->end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      });
  return identifier ? std::string(*s) : std::string("whose error code is not a short identifier");
}

// "AADSTS7000215": the numbers Entra puts in error_codes name the problem without any text.
std::string aadsts_codes_of(const json::value* codes) {
  std::string out;
  const auto* list = codes ? codes->if_array() : nullptr;
  if (!list) return out;
  for (const auto& c : *list) {
    if (!c.is_int64() || c.get_int64() < 0 || c.get_int64() > 99'999'999) continue;
    if (!out.empty()) out += ", ";
    out += "AADSTS" + std::to_string(c.get_int64());
    if (out.size() > 60) break;
  }
  return out;
}

}  // namespace

std::string form_urlencode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string build_entra_token_request(entra_endpoint_version v, std::string_view client_id,
                                      std::string_view client_secret, std::string_view audience) {
  std::string body = "grant_type=client_credentials&client_id=" + form_urlencode(client_id) +
                     "&client_secret=" + form_urlencode(client_secret);
  if (v == entra_endpoint_version::v1) return body + "&resource=" + form_urlencode(audience);
  // v2 asks for scopes, not a resource; ".default" means "the permissions granted to the app".
  std::string_view base = audience;
  while (base.ends_with('/')) base.remove_suffix(1);
  return body + "&scope=" + form_urlencode(std::string(base) + "/.default");
}

entra_endpoint_version entra_version_for_url(std::string_view token_url) {
  // Only the path matters; a query string or fragment (unusual, but legal) must not hide it.
  token_url = token_url.substr(0, token_url.find_first_of("?#"));
  while (token_url.ends_with('/')) token_url.remove_suffix(1);
  return token_url.ends_with("/oauth2/token") ? entra_endpoint_version::v1 : entra_endpoint_version::v2;
}

entra_token_result parse_entra_token_response(const entra_token_answer& answer) {
  entra_token_result result;
  std::string why;
  auto doc = parse_json_document(answer.body, why);
  if (!doc || !doc->is_object()) {
    result.error = std::string("the token endpoint's answer is not a JSON object") + shape_of(answer);
    return result;
  }
  json_fields f(doc->get_object(), "");

  // Entra's error answer: {"error":"invalid_client","error_description":"AADSTS7000215: ...",
  // "error_codes":[7000215],...}. Only the code and the numbers are kept: the description is free text that
  // an endpoint echoing the form would fill with the client secret.
  const json::value* error = f.find("error");
  if (error || answer.status != 200) {
    result.error = "the token endpoint answered with an error";
    if (error) result.error += " " + error_code_of(*error);
    const std::string numbers = aadsts_codes_of(f.find("error_codes"));
    if (!numbers.empty()) result.error += " (" + numbers + ")";
    result.error += shape_of(answer);
    return result;
  }

  entra_token token;
  token.access_token = f.required_text("access_token");
  if (!f.ok()) {
    result.error = "the token endpoint's answer: " + f.error() + shape_of(answer);
    return result;
  }
  std::string token_type = f.text("token_type");
  if (!token_type.empty() && token_type != "Bearer" && token_type != "bearer") {
    result.error = "the token endpoint returned a token that is not a Bearer token" + shape_of(answer);
    return result;
  }
  const json::value* expires = f.find("expires_in");
  auto seconds = expires ? seconds_value(*expires) : std::nullopt;
  if (!seconds) {
    result.error = (expires ? "the token endpoint's answer: expires_in is not a number of seconds"
                            : "the token endpoint's answer: expires_in is missing") +
                   shape_of(answer);
    return result;
  }
  token.expires_in_seconds = *seconds;
  result.token = std::move(token);
  return result;
}

}  // namespace esd::store
