// The emulator's RS256 signing identity: an RSA 2048 key generated at start, used for the Store ID keys
// and the Entra access tokens it issues. A JWT signed by another emulator instance does not verify here,
// which is how "foreign" keys are told apart.
#pragma once

#include <boost/json/object.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct evp_pkey_st;

namespace esd::emulator {

class jwt_signer {
 public:
  jwt_signer();  // generates the key; throws std::runtime_error if OpenSSL cannot
  ~jwt_signer();
  jwt_signer(const jwt_signer&) = delete;
  jwt_signer& operator=(const jwt_signer&) = delete;

  // header.payload.signature with header {"typ":"JWT","alg":"RS256","kid":..,"x5t":..}. Thread-safe.
  std::string sign(const boost::json::object& claims) const;

  // The claims of a JWT this instance signed; nullopt when it is not three base64url parts, not RS256,
  // not a JSON object, or the signature does not verify with our key. Never throws. Thread-safe.
  std::optional<boost::json::object> verify(std::string_view jwt) const;

  const std::string& kid() const { return kid_; }

 private:
  struct key_deleter {
    void operator()(evp_pkey_st* k) const;
  };
  std::unique_ptr<evp_pkey_st, key_deleter> key_;
  std::string kid_;  // upper-case hex SHA-1 of the public key, like the real keys' 40-hex-digit kid
  std::string x5t_;  // base64url of the same digest
};

}  // namespace esd::emulator
