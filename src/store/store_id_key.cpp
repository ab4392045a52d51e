#include "store/store_id_key.hpp"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cmath>
#include <limits>

#include "store/json_fields.hpp"

namespace esd::store {
namespace {

namespace json = boost::json;

constexpr std::size_t max_key_length = 16 * 1024;
constexpr std::string_view claim_prefix = "http://schemas.microsoft.com/marketplace/2015/08/claims/key/";
constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto decode_table = make_decode_table();

key_decode_result fail(std::string why) { return {std::nullopt, std::move(why)}; }

// The service a key belongs to is named by the first label of aud's host:
// "https://collections.mp.microsoft.com/v6.0/keys" or "https://purchase.mp.microsoft.com/v6.0/keys".
std::optional<key_kind> kind_from_audience(std::string_view aud) {
  constexpr std::string_view scheme = "https://";
  if (!aud.starts_with(scheme)) return std::nullopt;
  aud.remove_prefix(scheme.size());
  std::string_view first_label = aud.substr(0, aud.find_first_of("./:"));
  if (first_label == "collections") return key_kind::collections;
  if (first_label == "purchase") return key_kind::purchase;
  return std::nullopt;
}

// A JWT NumericDate: integral seconds, though RFC 7519 also allows a fraction, which we drop.
std::optional<std::int64_t> numeric_date(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    return static_cast<std::int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    double d = v.get_double();
    if (!std::isfinite(d) || std::fabs(d) > 9.0e15) return std::nullopt;
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

// Reads the part as a JSON object; on failure says which part ("header"/"payload") and why.
std::optional<json::object> decode_json_part(std::string_view part, std::string_view name,
                                             std::string& error) {
  auto bytes = base64url_decode(part);
  if (!bytes) {
    error = "the key's " + std::string(name) + " is not valid base64url";
    return std::nullopt;
  }
  std::string why;
  auto v = parse_json_document(*bytes, why);
  if (!v) {
    error = "the key's " + std::string(name) + " is not JSON";
    return std::nullopt;
  }
  if (!v->is_object()) {
    error = "the key's " + std::string(name) + " is JSON but not an object";
    return std::nullopt;
  }
  return std::move(v->get_object());
}

}  // namespace

std::string_view to_string(key_kind k) { return k == key_kind::purchase ? "purchase" : "collections"; }

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int shift : {18, 12, 6, 0}) out += alphabet[(n >> shift) & 63];
  }
  if (std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t n = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    if (rest == 2) out += alphabet[(n >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  // Padding is optional, but if present it must complete the last quantum exactly.
  if (text.size() % 4 == 0 && !text.empty()) {
    std::size_t pad = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
    text.remove_suffix(pad);
  }
  if (text.size() % 4 == 1) return std::nullopt;  // 6 bits cannot encode a byte
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    std::int8_t v = decode_table[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero, or two different strings would decode to the same bytes.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

key_decode_result decode_store_id_key(std::string_view jwt) {
  if (jwt.size() > max_key_length)
    return fail("the key is " + std::to_string(jwt.size()) + " bytes long; Store ID keys are under 16 KiB");
  if (jwt.empty()) return fail("the key is empty");
  for (char c : jwt) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return fail(
          "the key contains whitespace or control characters; upload it exactly as the client got it");
  }

  std::size_t first = jwt.find('.');
  std::size_t second = first == std::string_view::npos ? first : jwt.find('.', first + 1);
  if (second == std::string_view::npos || jwt.find('.', second + 1) != std::string_view::npos) {
    auto parts = std::count(jwt.begin(), jwt.end(), '.') + 1;
    return fail("the key is not a Store ID key (a JWT of 3 dot-separated parts); it has " +
                std::to_string(parts) + (parts == 1 ? " part" : " parts"));
  }
  std::string_view header = jwt.substr(0, first);
  std::string_view payload = jwt.substr(first + 1, second - first - 1);
  std::string_view signature = jwt.substr(second + 1);

  std::string error;
  if (!decode_json_part(header, "header", error)) return fail(std::move(error));
  auto claims_json = decode_json_part(payload, "payload", error);
  if (!claims_json) return fail(std::move(error));
  // We cannot verify the signature, but a key whose signature is not even base64url was damaged in transit.
  if (!base64url_decode(signature)) return fail("the key's signature is not valid base64url");

  store_id_key_claims claims;
  const json::value* aud = claims_json->if_contains("aud");
  if (!aud) return fail("the key has no audience (aud claim), so it is not a Store ID key");
  if (!aud->is_string()) return fail("the key's audience (aud claim) is not a string");
  claims.audience = std::string(aud->get_string());
  auto kind = kind_from_audience(claims.audience);
  if (!kind)
    return fail("the key's audience " + quoted_excerpt(claims.audience) +
                " is neither the Store collections service nor the Store purchase service");
  claims.kind = *kind;

  struct date_claim {
    const char* name;
    std::int64_t* out;
    bool required;
  };
  for (auto [name, out, required] :
       {date_claim{"exp", &claims.expires_at, true}, date_claim{"iat", &claims.issued_at, true},
        date_claim{"nbf", &claims.not_before, false}}) {
    const json::value* v = claims_json->if_contains(name);
    if (!v) {
      if (required) return fail("the key has no " + std::string(name) + " claim");
      continue;
    }
    auto seconds = numeric_date(*v);
    if (!seconds) return fail("the key's " + std::string(name) + " claim is not a number of seconds");
    *out = *seconds;
  }

  struct text_claim {
    std::string_view name;
    std::string* out;
  };
  for (auto [name, out] :
       {text_claim{"iss", &claims.issuer}, text_claim{"clientId", &claims.client_id},
        text_claim{"userId", &claims.user_id}, text_claim{"refreshUri", &claims.refresh_uri},
        text_claim{"payload", &claims.payload}}) {
    std::string full = name == "iss" ? std::string(name) : std::string(claim_prefix) + std::string(name);
    const json::value* v = claims_json->if_contains(full);
    if (!v) continue;  // optional: absent claims stay empty
    if (!v->is_string()) return fail("the key's " + std::string(name) + " claim is not a string");
    *out = std::string(v->get_string());
  }
  return {std::move(claims), {}};
}

}  // namespace esd::store
