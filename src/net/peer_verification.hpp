// Private to src/net: the per-connection half of TLS verification. The context (make_client_tls_context)
// says "verify the chain"; this binds each handshake to the host the request named, so a valid
// certificate for some other host is refused.
#pragma once

#include <openssl/ssl.h>

#include <boost/system/error_code.hpp>
#include <string>

namespace esd::net::detail {

// Sets SNI (for DNS names; RFC 6066 forbids IP literals there), the expected host name or IP address,
// and verify_peer on this SSL object. Call before the handshake.
boost::system::error_code bind_peer_identity(SSL* ssl, const std::string& host);

}  // namespace esd::net::detail
