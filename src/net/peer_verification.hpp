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

// The TLS session a host gave us last (its newest ticket), to resume the next connection to it with: an
// abbreviated handshake, in which no certificate is sent, parsed or checked again (less memory per
// connection, and much less CPU on both sides). One per host and port, so a session is only offered to
// the host that issued it, whose certificate was verified for that name when the session was made.
class tls_session_slot;
// The context's new-session callback (make_client_tls_context): stores the session in the connection's slot.
int remember_session(SSL* ssl, SSL_SESSION* session);

class tls_session_slot {
 public:
  tls_session_slot() = default;
  ~tls_session_slot() { SSL_SESSION_free(session_); }
  tls_session_slot(const tls_session_slot&) = delete;
  tls_session_slot& operator=(const tls_session_slot&) = delete;

  // Offers the stored session on `ssl`, if there is one, and has the sessions (tickets) this connection
  // receives stored here. Call before the handshake; the slot must outlive every OpenSSL call on `ssl`.
  void attach(SSL* ssl);
  // Called by OpenSSL (through the context's new-session callback): keeps `session`, taking its reference.
  void keep(SSL_SESSION* session);

 private:
  SSL_SESSION* session_ = nullptr;
};

}  // namespace esd::net::detail
