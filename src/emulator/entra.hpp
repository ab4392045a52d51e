// Microsoft Entra ID's token endpoint for one confidential client (client-credentials grant), v1
// (/{tenant}/oauth2/token, resource=..., numbers as strings) and v2 (/{tenant}/oauth2/v2.0/token,
// scope=<audience>/.default, numbers), with the AADSTS error bodies the real one sends.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "emulator/emulator_state.hpp"
#include "emulator/http_types.hpp"
#include "emulator/jwt_signer.hpp"

namespace esd::emulator {

// The audience the collections and purchase services require.
inline constexpr std::string_view onestore_audience = "https://onestore.microsoft.com";

struct access_token_claims {
  std::string audience;
  std::string app_id;  // the client id the token was issued to
  std::int64_t not_before = 0;
  std::int64_t expires_at = 0;
  std::uint64_t serial = 0;  // the order of issue, 1 for the first token this instance issued
};

// The AADSTS error body: error, error_description (with trace id, correlation id and timestamp),
// error_codes, timestamp, trace_id, correlation_id, error_uri. `text` follows "AADSTS<code>: ".
http_response entra_error(http::status status, std::string_view error, int code, std::string_view text);

class entra_issuer {
 public:
  entra_issuer(const jwt_signer& signer, const emulator_config& config) : signer_(signer), config_(config) {}

  // "/{tenant}/oauth2/token" or "/{tenant}/oauth2/v2.0/token"; fills tenant and v2.
  static bool is_token_path(std::string_view path, std::string& tenant, bool& v2);

  http_response token(const http_request& req, std::string_view tenant, bool v2) const;

  // The claims of an access token this instance issued (signature checked, expiry not); nullopt otherwise.
  std::optional<access_token_claims> read(std::string_view token) const;

  // Token revocation, as when the Store stops honouring tokens early (a rotated secret, a cache on its
  // side): every token issued so far is refused from now on; tokens issued afterwards work.
  std::uint64_t revoke_issued() { return revoked_through_ = issued_.load(); }
  bool revoked(const access_token_claims& token) const { return token.serial <= revoked_through_.load(); }
  std::uint64_t issued() const { return issued_.load(); }
  std::uint64_t revoked_through() const { return revoked_through_.load(); }
  // Store requests refused because their token was revoked.
  void count_revoked_refusal() const { ++revoked_refusals_; }
  std::uint64_t revoked_refusals() const { return revoked_refusals_.load(); }

 private:
  const jwt_signer& signer_;
  const emulator_config& config_;
  mutable std::atomic<std::uint64_t> issued_{0};
  std::atomic<std::uint64_t> revoked_through_{0};
  mutable std::atomic<std::uint64_t> revoked_refusals_{0};
};

}  // namespace esd::emulator
