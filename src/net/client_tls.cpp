// The TLS settings every outgoing connection uses: chain verification against the system trust store
// (plus an optional CA file for test or private deployments), TLS 1.2 or newer, and a per-connection
// host-name check.
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <stdexcept>

#include "net/https_client.hpp"
#include "net/peer_verification.hpp"

namespace esd::net {

namespace detail {

namespace {

int slot_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

void tls_session_slot::attach(SSL* ssl) {
  SSL_set_ex_data(ssl, slot_index(), this);
  if (session_) SSL_set_session(ssl, session_);  // takes its own reference
}

void tls_session_slot::keep(SSL_SESSION* session) {
  SSL_SESSION_free(session_);
  session_ = session;
}

int remember_session(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<tls_session_slot*>(SSL_get_ex_data(ssl, slot_index()));
  if (!slot || SSL_SESSION_is_resumable(session) != 1) return 0;  // 0: OpenSSL keeps its reference
  slot->keep(session);
  return 1;
}

}  // namespace detail

asio::ssl::context make_client_tls_context(const std::string& ca_file) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    throw std::runtime_error("TLS setup: cannot require TLS 1.2 or newer");
  }
  ctx.set_verify_mode(asio::ssl::verify_peer);
  // Sessions are kept per host by the connection pool (tls_session_slot), not in OpenSSL's own cache.
  SSL_CTX_set_session_cache_mode(ctx.native_handle(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx.native_handle(), &detail::remember_session);

  boost::system::error_code ec;
  ctx.set_default_verify_paths(ec);
  if (ec) throw std::runtime_error("TLS setup: cannot load the system trust store: " + ec.message());
  if (!ca_file.empty()) {
    ctx.load_verify_file(ca_file, ec);
    if (ec) {
      throw std::runtime_error("cannot load CA file '" + ca_file +
                               "' (ca_file must name a readable PEM file of " +
                               "trusted certificates): " + ec.message());
    }
  }
  return ctx;
}

namespace detail {

boost::system::error_code bind_peer_identity(SSL* ssl, const std::string& host) {
  auto ssl_error = [] {
    auto code = ERR_get_error();
    return boost::system::error_code(
        static_cast<int>(code ? code : ERR_PACK(ERR_LIB_SSL, 0, ERR_R_INTERNAL_ERROR)),
        boost::asio::error::get_ssl_category());
  };
  ERR_clear_error();
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);

  boost::system::error_code not_ip;
  boost::asio::ip::make_address(host, not_ip);
  if (!not_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) return ssl_error();
    return {};
  }
  if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) return ssl_error();
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(ssl, host.c_str()) != 1) return ssl_error();
  return {};
}

}  // namespace detail
}  // namespace esd::net
