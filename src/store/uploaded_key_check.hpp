// Whether an uploaded Store ID key and its player's user id may be kept: every claim the claim stores or
// quotes is put into range before it goes near SQL, so one forged upload can only fail its own event.
// The queue claim asks check_player_uploads about each player's uploads and stores what it keeps.
//
// Pure (no I/O, the time is given) and never throws. A problem is a phrase that names the field and
// never echoes a claim in full: a few hundred bytes at most, printable ASCII.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store_date.hpp"
#include "store/store_id_key.hpp"

namespace esd::store {

// The bounds an uploaded key must keep.
namespace key_bounds {
// iat, nbf and exp are seconds from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z: inside PostgreSQL's
// timestamptz and the Store's own date form.
inline constexpr std::int64_t earliest_time = 0;
inline constexpr std::int64_t latest_time = 253402300799;
// Far beyond the lifetime of any key the Store issues; a later exp is forged.
inline constexpr std::int64_t max_lifetime_ahead = 366 * 86400;
// Clock skew between the Store and us, generously.
inline constexpr std::int64_t max_issued_ahead = 86400;
// String claims, in bytes: far above what the Store issues, far below what a btree row or a log line holds.
inline constexpr std::size_t max_audience = 256;     // aud, iss
inline constexpr std::size_t max_client_id = 128;    // a GUID, with or without dashes
inline constexpr std::size_t max_opaque_user_id = 512;
inline constexpr std::size_t max_refresh_uri = 2048;
inline constexpr std::size_t max_payload = 8192;
// The game's user id, in characters: the schema's own limit on entitlement_sync.users.
inline constexpr std::size_t max_user_id_chars = 256;
}  // namespace key_bounds

struct uploaded_key_check {
  std::string problem;  // a phrase following "the key ...", empty when the key may be kept
  store_time issued_at, expires_at;  // set when it may
  explicit operator bool() const { return problem.empty(); }
};

// Decodes the key and checks it for the column it came in: its claims in range (check_key_claims), its
// kind, its clientId (when expected_client_id is not empty), that it has not expired at now_s and
// expires no more than max_lifetime_ahead after it, and was not issued more than max_issued_ahead after it.
// No order between iat, nbf and exp is required: Microsoft's own documented example key has exp before
// iat and nbf after it.
uploaded_key_check check_uploaded_key(std::string_view key, key_kind expected, std::int64_t now_s,
                                      std::string_view expected_client_id);

// One queue event's uploaded keys, as claimed (each absent when the event carried none).
struct key_upload {
  std::int64_t event_id = 0;
  std::optional<std::string_view> collections_key, purchase_key;
};

struct kept_key {
  std::string key;
  store_time issued_at, expires_at;
};

// What a claim keeps of one player's uploads, and what the player's record says of the rest.
struct uploads_verdict {
  std::optional<kept_key> collections, purchase;  // the newest key of each kind that may be kept
  // A refused user id first, then each refused key in event order, in words that say who must act.
  std::vector<std::string> problems;
};

// Checks each key of the player's uploads (oldest first: a later key that may be kept replaces an earlier
// one) with check_uploaded_key, and the user id with check_user_id. A refused user id keeps no key at all.
uploads_verdict check_player_uploads(std::string_view user_id, const std::vector<key_upload>& uploads,
                                     std::int64_t now_s, std::string_view expected_client_id);

// The decoded claims in range: times within key_bounds, string claims bounded, valid UTF-8 without NUL.
// Returns the problem ("its exp claim ..."), empty when there is none.
std::string check_key_claims(const store_id_key_claims& claims);

// A game user id the daemon can work with: not empty, at most max_user_id_chars characters of valid
// UTF-8, no control characters. Returns the problem, empty when there is none.
std::string check_user_id(std::string_view user_id);

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text);

}  // namespace esd::store
