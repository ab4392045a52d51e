// Fuzzes the claim's check of uploaded keys and user ids (src/store/uploaded_key_check.hpp): the input as
// the claims (payload JSON) of a key, as a whole key, and as a game user id.
//
// Invariants checked (each is promised by uploaded_key_check.hpp):
// - kept xor refused: a kept key has no problem, a refused one a non-empty problem;
// - a kept key's iat and exp, in microseconds, lie within key_bounds (so within PostgreSQL's timestamptz),
//   exp after now and at most max_lifetime_ahead later, iat at most max_issued_ahead after now;
// - a problem is printable ASCII of at most 400 bytes and never holds the input when it is longer
//   than 24 bytes (the messages' own words hold no '{' or '.', which JSON objects and keys do);
// - a user id passes only when it is non-empty valid UTF-8 of at most 256 characters without control
//   characters; otherwise the problem is printable ASCII.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "store/uploaded_key_check.hpp"

namespace {

using namespace esd::store;

constexpr std::int64_t now = 1'800'000'000;
const std::string client = "11111111-1111-1111-1111-111111111111";

bool printable_ascii(std::string_view s) {
  for (char ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e) return false;
  return true;
}

void check_key(std::string_view key, std::string_view input, key_kind kind) {
  const uploaded_key_check r = check_uploaded_key(key, kind, now, client);
  FUZZ_CHECK(bool(r) == r.problem.empty());
  if (r) {
    FUZZ_CHECK(r.issued_at.micros >= key_bounds::earliest_time * 1'000'000);
    FUZZ_CHECK(r.issued_at.micros <= (now + key_bounds::max_issued_ahead) * 1'000'000);
    FUZZ_CHECK(r.expires_at.micros > now * 1'000'000);
    FUZZ_CHECK(r.expires_at.micros <= (now + key_bounds::max_lifetime_ahead) * 1'000'000);
    return;
  }
  FUZZ_CHECK_MSG(printable_ascii(r.problem), r.problem);
  FUZZ_CHECK_MSG(r.problem.size() <= 400, r.problem);
  const bool quotable = input.find('{') == std::string_view::npos && input.find('.') == std::string_view::npos;
  if (input.size() > 24 && !quotable) FUZZ_CHECK_MSG(r.problem.find(input) == std::string::npos, r.problem);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // The input as the claims of a key with a plausible header and signature.
  const std::string key = base64url_encode(R"({"alg":"RS256","typ":"JWT"})") + "." + base64url_encode(input) +
                          "." + base64url_encode("signature");
  check_key(key, input, key_kind::collections);
  check_key(key, input, key_kind::purchase);
  check_key(input, input, key_kind::collections);

  const std::string user_problem = check_user_id(input);
  if (user_problem.empty()) {
    FUZZ_CHECK(!input.empty());
    FUZZ_CHECK(is_valid_utf8(input));
    std::size_t chars = 0;
    for (char ch : input) {
      const auto c = static_cast<unsigned char>(ch);
      FUZZ_CHECK(c >= 0x20 && c != 0x7f);
      if ((c & 0xC0) != 0x80) ++chars;
    }
    FUZZ_CHECK(chars <= key_bounds::max_user_id_chars);
  } else {
    FUZZ_CHECK_MSG(printable_ascii(user_problem), user_problem);
  }
  return 0;
}
