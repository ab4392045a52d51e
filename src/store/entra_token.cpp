#include "store/entra_token.hpp"

#include <boost/json.hpp>
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

entra_token_result parse_entra_token_response(std::string_view body) {
  entra_token_result result;
  std::string why;
  auto doc = parse_json_document(body, why);
  if (!doc || !doc->is_object()) {
    // An HTML error page from a proxy is common here; show its start, it is not secret.
    result.error = "the token endpoint's answer is not a JSON object: " + quoted_excerpt(body, 120);
    return result;
  }
  json_fields f(doc->get_object(), "");

  // Entra's error answer: {"error":"invalid_client","error_description":"AADSTS7000215: ...",...}.
  // The description names the problem (a wrong secret, an unknown tenant) without echoing the secret.
  std::string error = f.text("error");
  if (!error.empty()) {
    std::string description = f.text("error_description");
    result.error = printable_excerpt(error, 80);
    if (!description.empty()) result.error += ": " + printable_excerpt(description, 300);
    return result;
  }

  entra_token token;
  token.access_token = f.required_text("access_token");
  if (!f.ok()) {
    result.error = "the token endpoint's answer: " + f.error();
    return result;
  }
  std::string token_type = f.text("token_type");
  if (!token_type.empty() && token_type != "Bearer" && token_type != "bearer") {
    result.error =
        "the token endpoint returned a " + quoted_excerpt(token_type) + " token, not a Bearer token";
    return result;
  }
  const json::value* expires = f.find("expires_in");
  auto seconds = expires ? seconds_value(*expires) : std::nullopt;
  if (!seconds) {
    result.error = expires ? "the token endpoint's answer: expires_in is not a number of seconds"
                           : "the token endpoint's answer: expires_in is missing";
    return result;
  }
  token.expires_in_seconds = *seconds;
  result.token = std::move(token);
  return result;
}

}  // namespace esd::store
