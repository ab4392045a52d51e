#include "emulator/jwt_signer.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <stdexcept>
#include <vector>

#include "store/store_id_key.hpp"

namespace esd::emulator {

namespace json = boost::json;

void jwt_signer::key_deleter::operator()(evp_pkey_st* k) const { EVP_PKEY_free(k); }

jwt_signer::jwt_signer() : key_(EVP_RSA_gen(2048)) {
  if (!key_) throw std::runtime_error("cannot generate the RSA signing key (OpenSSL EVP_RSA_gen failed)");
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key_.get(), &der);
  if (len <= 0) throw std::runtime_error("cannot encode the RSA public key");
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(der, static_cast<std::size_t>(len), digest);
  OPENSSL_free(der);
  static constexpr char hex[] = "0123456789ABCDEF";
  for (unsigned char b : digest) {
    kid_ += hex[b >> 4];
    kid_ += hex[b & 15];
  }
  x5t_ = store::base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

jwt_signer::~jwt_signer() = default;

std::string jwt_signer::sign(const json::object& claims) const {
  json::object header;
  header["typ"] = "JWT";
  header["alg"] = "RS256";
  header["kid"] = kid_;
  header["x5t"] = x5t_;
  std::string signing_input = store::base64url_encode(json::serialize(header)) + "." +
                              store::base64url_encode(json::serialize(claims));

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t sig_len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &sig_len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1)
    throw std::runtime_error("RS256 signing failed");
  std::vector<unsigned char> sig(sig_len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &sig_len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1)
    throw std::runtime_error("RS256 signing failed");
  return signing_input + "." +
         store::base64url_encode(std::string_view(reinterpret_cast<const char*>(sig.data()), sig_len));
}

std::optional<json::object> jwt_signer::verify(std::string_view jwt) const {
  if (jwt.size() > 16 * 1024) return std::nullopt;
  const auto d1 = jwt.find('.');
  if (d1 == std::string_view::npos) return std::nullopt;
  const auto d2 = jwt.find('.', d1 + 1);
  if (d2 == std::string_view::npos || jwt.find('.', d2 + 1) != std::string_view::npos) return std::nullopt;

  const auto header_text = store::base64url_decode(jwt.substr(0, d1));
  const auto claims_text = store::base64url_decode(jwt.substr(d1 + 1, d2 - d1 - 1));
  const auto sig = store::base64url_decode(jwt.substr(d2 + 1));
  if (!header_text || !claims_text || !sig) return std::nullopt;

  boost::system::error_code ec;
  json::value header = json::parse(*header_text, ec);
  if (ec || !header.is_object()) return std::nullopt;
  const auto* alg = header.as_object().if_contains("alg");
  if (!alg || !alg->is_string() || alg->as_string() != "RS256") return std::nullopt;

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  const std::string_view signing_input = jwt.substr(0, d2);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1) {
    ERR_clear_error();  // a stale error would confuse the next TLS call on this thread
    return std::nullopt;
  }

  json::value claims = json::parse(*claims_text, ec);
  if (ec || !claims.is_object()) return std::nullopt;
  return std::move(claims.as_object());
}

}  // namespace esd::emulator
