#include "emulator/entra.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <ctime>
#include <map>

namespace esd::emulator {

namespace json = boost::json;

namespace {



int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string form_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// application/x-www-form-urlencoded; the first occurrence of a name wins.
std::map<std::string, std::string> parse_form(std::string_view body) {
  std::map<std::string, std::string> form;
  while (!body.empty()) {
    const auto amp = body.find('&');
    const auto pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    form.try_emplace(form_decode(pair.substr(0, eq)),
                     eq == std::string_view::npos ? std::string{} : form_decode(pair.substr(eq + 1)));
  }
  return form;
}

std::string entra_timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

http_response entra_error(http::status status, std::string_view error, int code, std::string_view text) {
  const std::string trace = random_guid(), correlation = random_guid(), when = entra_timestamp();
  json::object body;
  body["error"] = error;
  body["error_description"] = "AADSTS" + std::to_string(code) + ": " + std::string(text) +
                              "\r\nTrace ID: " + trace + "\r\nCorrelation ID: " + correlation +
                              "\r\nTimestamp: " + when;
  body["error_codes"] = json::array{code};
  body["timestamp"] = when;
  body["trace_id"] = trace;
  body["correlation_id"] = correlation;
  body["error_uri"] = "https://login.microsoftonline.com/error?code=" + std::to_string(code);
  auto res = json_response(status, body);
  res.set(http::field::cache_control, "no-store, no-cache");
  res.set(http::field::pragma, "no-cache");
  res.set("x-ms-request-id", trace);
  return res;
}

bool entra_issuer::is_token_path(std::string_view path, std::string& tenant, bool& v2) {
  if (path.size() < 2 || path.front() != '/') return false;
  const auto slash = path.find('/', 1);
  if (slash == std::string_view::npos || slash == 1) return false;
  const auto rest = path.substr(slash);
  if (rest == "/oauth2/v2.0/token")
    v2 = true;
  else if (rest == "/oauth2/token")
    v2 = false;
  else
    return false;
  tenant = std::string(path.substr(1, slash - 1));
  return true;
}

http_response entra_issuer::token(const http_request& req, std::string_view tenant, bool v2) const {
  if (req.method() != http::verb::post)
    return entra_error(http::status::bad_request, "invalid_request", 900561,
                       "The endpoint only accepts POST requests. Received a " +
                           std::string(req.method_string()) + " request.");
  if (!iequals(tenant, config_.tenant_id))
    return entra_error(
        http::status::bad_request, "invalid_request", 90002,
        "Tenant '" + std::string(tenant) +
            "' not found. Check to make sure you have the correct tenant ID and are signing into the "
            "correct cloud. Check with your subscription administrator, this may happen if there are "
            "no active subscriptions for the tenant.");
  const auto form = parse_form(req.body());
  const auto field = [&](const char* name) -> const std::string* {
    const auto it = form.find(name);
    return it == form.end() || it->second.empty() ? nullptr : &it->second;
  };
  const auto* grant = field("grant_type");
  if (!grant)
    return entra_error(http::status::bad_request, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'grant_type'.");
  if (*grant != "client_credentials")
    return entra_error(http::status::bad_request, "unsupported_grant_type", 70003,
                       "The app requested an unsupported grant type '" + *grant + "'.");
  const auto* client = field("client_id");
  if (!client)
    return entra_error(http::status::bad_request, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'client_id'.");
  if (!iequals(*client, config_.client_id))
    return entra_error(
        http::status::bad_request, "unauthorized_client", 700016,
        "Application with identifier '" + *client + "' was not found in the directory '" +
            std::string(tenant) +
            "'. This can happen if the application has not been installed by the administrator of "
            "the tenant or consented to by any user in the tenant. You may have sent your "
            "authentication request to the wrong tenant.");
  const auto* secret = field("client_secret");
  if (!secret)
    return entra_error(
        http::status::unauthorized, "invalid_client", 7000216,
        "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' "
        "grant type.");
  if (*secret != config_.client_secret)
    return entra_error(
        http::status::unauthorized, "invalid_client", 7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client "
        "secret value, not the client secret ID, for a secret added to app '" +
            config_.client_id + "'.");

  std::string audience;
  if (v2) {
    const auto* scope = field("scope");
    if (!scope)
      return entra_error(http::status::bad_request, "invalid_request", 900144,
                         "The request body must contain the following parameter: 'scope'.");
    constexpr std::string_view suffix = "/.default";
    if (scope->size() <= suffix.size() || !scope->ends_with(suffix) || scope->find(' ') != std::string::npos)
      return entra_error(
          http::status::bad_request, "invalid_scope", 1002012,
          "The provided value for scope " + *scope +
              " is not valid. Client credential flows must have a scope value with /.default suffixed "
              "to the resource identifier (application ID URI).");
    audience = scope->substr(0, scope->size() - suffix.size());
  } else {
    const auto* resource = field("resource");
    if (!resource)
      return entra_error(http::status::bad_request, "invalid_request", 900144,
                         "The request body must contain the following parameter: 'resource'.");
    audience = *resource;
  }
  // The Store's resource identifiers: https://onestore.microsoft.com and its b2b/keys/create/... URIs.
  if (!audience.starts_with(onestore_audience) ||
      (audience.size() > onestore_audience.size() && audience[onestore_audience.size()] != '/'))
    return entra_error(
        http::status::bad_request, "invalid_resource", 500011,
        "The resource principal named " + audience + " was not found in the tenant named " +
            config_.tenant_id +
            ". This can happen if the application has not been installed by the administrator of the "
            "tenant or consented to by any user in the tenant. You might have sent your "
            "authentication request to the wrong tenant.");

  const std::int64_t now = now_seconds();
  const std::int64_t not_before = now - 300, expires_at = now + config_.token_lifetime_seconds;
  const std::string issuer = "https://sts.windows.net/" + config_.tenant_id + "/";
  const std::string object_id = random_guid();
  json::object claims{{"aud", audience},
                      {"iss", issuer},
                      {"iat", not_before},
                      {"nbf", not_before},
                      {"exp", expires_at},
                      {"appid", config_.client_id},
                      {"appidacr", "1"},
                      {"idp", issuer},
                      {"oid", object_id},
                      {"sub", object_id},
                      {"tid", config_.tenant_id},
                      {"uti", random_guid().substr(0, 22)},
                      {"ver", "1.0"},
                      {"xms_esd_serial", ++issued_}};
  const std::string access_token = signer_.sign(claims);
  const std::int64_t lifetime = config_.token_lifetime_seconds;

  json::object body;
  body["token_type"] = "Bearer";
  if (v2) {
    body["expires_in"] = lifetime;
    body["ext_expires_in"] = lifetime;
  } else {
    body["expires_in"] = std::to_string(lifetime);
    body["ext_expires_in"] = std::to_string(lifetime);
    body["expires_on"] = std::to_string(expires_at);
    body["not_before"] = std::to_string(not_before);
    body["resource"] = audience;
  }
  body["access_token"] = access_token;
  auto res = json_response(http::status::ok, body);
  res.set(http::field::cache_control, "no-store, no-cache");
  res.set(http::field::pragma, "no-cache");
  res.set("x-ms-request-id", random_guid());
  return res;
}

std::optional<access_token_claims> entra_issuer::read(std::string_view token) const {
  const auto claims = signer_.verify(token);
  if (!claims) return std::nullopt;
  const auto* aud = claims->if_contains("aud");
  const auto* appid = claims->if_contains("appid");
  const auto* nbf = claims->if_contains("nbf");
  const auto* exp = claims->if_contains("exp");
  const auto* serial = claims->if_contains("xms_esd_serial");
  if (!serial || !(serial->is_uint64() || serial->is_int64())) return std::nullopt;
  if (!aud || !aud->is_string() || !appid || !appid->is_string() || !nbf || !nbf->is_int64() || !exp ||
      !exp->is_int64())
    return std::nullopt;
  return access_token_claims{std::string(aud->as_string()), std::string(appid->as_string()), nbf->as_int64(),
                             exp->as_int64(), serial->to_number<std::uint64_t>()};
}

}  // namespace esd::emulator
