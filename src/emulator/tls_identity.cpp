#include "emulator/tls_identity.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace esd::emulator {

namespace {

template <typename T, void (*F)(T*)>
struct openssl_deleter {
  void operator()(T* p) const { F(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509, X509_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO, BIO_free_all>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("TLS certificate generation failed: ") + what);
}

void add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "cannot build an X.509 extension");
  const int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  check(added == 1, "cannot add an X.509 extension");
}

std::string to_pem(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot read the ") + what + " file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

tls_identity generate_tls_identity(const std::string& public_host) {
  pkey_ptr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "cannot generate an EC P-256 key");
  x509_ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), 2) == 1, "X509_set_version");

  unsigned char serial_bytes[16];
  check(RAND_bytes(serial_bytes, sizeof serial_bytes) == 1, "RAND_bytes");
  serial_bytes[0] &= 0x7f;  // a positive serial number
  BIGNUM* serial_bn = BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr);
  check(serial_bn != nullptr && BN_to_ASN1_INTEGER(serial_bn, X509_get_serialNumber(cert.get())) != nullptr,
        "serial number");
  BN_free(serial_bn);

  // Valid from an hour ago (clock skew) for one day.
  check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400) != nullptr, "notAfter");
  check(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");

  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn = public_host.size() < 64 ? public_host : "localhost";
  check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("entitlement-store-emulator"), -1,
                                   -1, 0) == 1 &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) == 1,
        "subject name");
  check(X509_set_issuer_name(cert.get(), name) == 1, "issuer name");

  std::string san = is_ip_literal(public_host) ? "IP:" + public_host : "DNS:" + public_host;
  if (public_host != "localhost") san += ",DNS:localhost";
  if (public_host != "127.0.0.1") san += ",IP:127.0.0.1";
  add_extension(cert.get(), NID_subject_alt_name, san);
  // Self-signed and trusted directly by clients (--cacert / ca_file), like `openssl req -x509` makes.
  add_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign");
  add_extension(cert.get(), NID_ext_key_usage, "serverAuth");
  add_extension(cert.get(), NID_subject_key_identifier, "hash");
  add_extension(cert.get(), NID_authority_key_identifier, "keyid:always");
  check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

  bio_ptr cert_bio(BIO_new(BIO_s_mem())), key_bio(BIO_new(BIO_s_mem()));
  check(cert_bio && key_bio, "BIO_new");
  check(PEM_write_bio_X509(cert_bio.get(), cert.get()) == 1, "PEM_write_bio_X509");
  check(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  return tls_identity{to_pem(cert_bio.get()), to_pem(key_bio.get())};
}

tls_identity load_tls_identity(const std::string& cert_file, const std::string& key_file) {
  return tls_identity{read_file(cert_file, "certificate"), read_file(key_file, "private key")};
}

boost::asio::ssl::context make_server_tls_context(const tls_identity& identity) {
  namespace ssl = boost::asio::ssl;
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx.use_certificate_chain(boost::asio::buffer(identity.certificate_pem), ec);
  if (ec) throw std::runtime_error("the TLS certificate is not a PEM certificate: " + ec.message());
  ctx.use_private_key(boost::asio::buffer(identity.private_key_pem), ssl::context::pem, ec);
  if (ec) throw std::runtime_error("the TLS private key is not a PEM private key: " + ec.message());
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    throw std::runtime_error("the TLS private key does not match the certificate");
  return ctx;
}

}  // namespace esd::emulator
