// Fuzzes the Store ID key decoder (src/store/store_id_key.hpp): decode_store_id_key on the input as a
// key, and base64url_decode / base64url_encode on the input as text and as bytes.
//
// Invariants checked (each is promised by store_id_key.hpp or store_id_key.cpp):
// - success and failure are exclusive: claims present <=> error empty;
// - a failure says why (a non-empty error) without control characters (the audience is quoted with
//   store::excerpt), and the error never contains the key. Checked for the whole key and for its
//   payload part when they are longer than 24 characters and the key has no whitespace: the messages'
//   own words are shorter and hold no '.', and the quoted audience cannot hold the payload that encodes
//   it. (A key with spaces, or without dots, can be a phrase of a message; libFuzzer finds those.)
// - keys longer than 16 KiB are rejected;
// - a decoded key's kind matches its audience (https://collections... or https://purchase...);
// - base64url: decode(encode(bytes)) == bytes; the encoding has no padding and only the url-safe
//   alphabet; a string that decodes is canonical: encode(decode(s)) is s without its padding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "store/store_id_key.hpp"

namespace {

using namespace esd::store;

bool url_safe(std::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

void check_base64url(std::string_view input) {
  const std::string encoded = base64url_encode(input);
  FUZZ_CHECK(url_safe(encoded));
  FUZZ_CHECK(encoded.size() == (input.size() * 4 + 2) / 3);
  auto decoded = base64url_decode(encoded);
  FUZZ_CHECK(decoded && *decoded == input);

  if (auto bytes = base64url_decode(input)) {
    std::string_view unpadded = input;
    while (unpadded.ends_with('=')) unpadded.remove_suffix(1);
    FUZZ_CHECK(base64url_encode(*bytes) == unpadded);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view jwt(reinterpret_cast<const char*>(data), size);
  key_decode_result r = decode_store_id_key(jwt);

  FUZZ_CHECK(bool(r) == r.claims.has_value());
  FUZZ_CHECK(bool(r) == r.error.empty());
  if (!r) {
    FUZZ_CHECK_MSG(!esd::fuzz::has_control_char(r.error), r.error);
    const std::size_t first = jwt.find('.');
    const std::size_t second = first == std::string_view::npos ? first : jwt.find('.', first + 1);
    const bool no_space = !esd::fuzz::has_control_char(jwt) && jwt.find(' ') == std::string_view::npos;
    if (no_space && jwt.size() > 24 && first != std::string_view::npos)
      FUZZ_CHECK_MSG(r.error.find(jwt) == std::string::npos, r.error);
    if (no_space && second != std::string_view::npos) {
      const std::string_view payload = jwt.substr(first + 1, second - first - 1);
      if (payload.size() > 24) FUZZ_CHECK_MSG(r.error.find(payload) == std::string::npos, r.error);
    }
  } else {
    FUZZ_CHECK(jwt.size() <= 16 * 1024);
    const store_id_key_claims& c = *r.claims;
    const std::string_view prefix = c.kind == key_kind::purchase ? "https://purchase" : "https://collections";
    FUZZ_CHECK_MSG(c.audience.starts_with(prefix), c.audience);
    FUZZ_CHECK(to_string(c.kind) == (c.kind == key_kind::purchase ? "purchase" : "collections"));
  }

  check_base64url(jwt);
  return 0;
}
