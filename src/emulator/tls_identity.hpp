// The emulator's TLS certificate: generated at start (EC P-256, self-signed, one day, SAN for the public
// host, localhost and 127.0.0.1) so clients can trust exactly this instance, or loaded from files.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <string>

namespace esd::emulator {

struct tls_identity {
  std::string certificate_pem;
  std::string private_key_pem;
};

// Throws std::runtime_error when OpenSSL fails.
tls_identity generate_tls_identity(const std::string& public_host);

// Throws std::runtime_error naming the file that cannot be read.
tls_identity load_tls_identity(const std::string& cert_file, const std::string& key_file);

// A TLS 1.2+ server context with this certificate and key. Throws std::runtime_error if they do not fit.
boost::asio::ssl::context make_server_tls_context(const tls_identity& identity);

}  // namespace esd::emulator
