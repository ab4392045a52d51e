// See tls_socket.hpp.
#include "net/tls_socket.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <new>

namespace esd::net::detail {

using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// The BIO between OpenSSL and the socket: recv/send on the non-blocking descriptor, MSG_NOSIGNAL so that
// a peer that hung up gives EPIPE instead of a SIGPIPE, and the retry flags OpenSSL turns into
// WANT_READ / WANT_WRITE. Its data pointer is the connection's tls_core.
tls_core& core_of(BIO* b) { return *static_cast<tls_core*>(BIO_get_data(b)); }

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

int bio_read(BIO* b, char* out, int len) {
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  tls_core& c = core_of(b);
  ssize_t n = ::recv(c.socket.native_handle(), out, static_cast<std::size_t>(len), 0);
  if (n > 0) return static_cast<int>(n);
  if (n == 0) {
    c.peer_eof = true;
    return 0;
  }
  if (would_block(errno)) {
    BIO_set_retry_read(b);
  } else {
    c.last_errno = errno;
  }
  return -1;
}

int bio_write(BIO* b, const char* in, int len) {
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  tls_core& c = core_of(b);
  ssize_t n = ::send(c.socket.native_handle(), in, static_cast<std::size_t>(len), MSG_NOSIGNAL);
  if (n >= 0) return static_cast<int>(n);
  if (would_block(errno)) {
    BIO_set_retry_write(b);
  } else {
    c.last_errno = errno;
  }
  return -1;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return core_of(b).peer_eof ? 1 : 0;
    default:
      return 0;
  }
}

BIO_METHOD* socket_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "esd socket");
    if (!m || BIO_meth_set_read(m, &bio_read) != 1 || BIO_meth_set_write(m, &bio_write) != 1 ||
        BIO_meth_set_ctrl(m, &bio_ctrl) != 1) {
      throw std::bad_alloc();
    }
    return m;
  }();
  return method;
}

}  // namespace

tls_core::tls_core(const asio::any_io_executor& ex, SSL_CTX* ctx) : socket(ex), timer(ex) {
  ssl = SSL_new(ctx);
  if (!ssl) throw std::bad_alloc();
  BIO* bio = BIO_new(socket_bio_method());
  if (!bio) {
    SSL_free(ssl);
    throw std::bad_alloc();
  }
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);  // one reference, now owned by the SSL object
  SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

tls_core::~tls_core() {
  // Connections end without a close_notify (see connection::close). Said quietly to OpenSSL all the same:
  // otherwise it takes the unannounced end for a failure and marks the TLS session not resumable, and the
  // next connection to the host could not resume it.
  if (SSL_is_init_finished(ssl)) {
    SSL_set_quiet_shutdown(ssl, 1);
    SSL_shutdown(ssl);
  }
  SSL_free(ssl);
}

tls_socket::tls_socket(const executor_type& ex, SSL_CTX* ctx) : core_(std::make_shared<tls_core>(ex, ctx)) {}

tls_socket::~tls_socket() { close(); }

void tls_socket::expires_at(clock::time_point deadline) {
  core& c = *core_;
  const unsigned generation = ++c.generation;
  c.expired = false;
  c.timer.expires_at(deadline);
  c.timer.async_wait([weak = std::weak_ptr<core>(core_), generation](const error_code& ec) {
    if (ec) return;
    auto c = weak.lock();
    if (!c || c->generation != generation) return;
    c->expired = true;
    error_code ignored;
    c->socket.cancel(ignored);
  });
}

void tls_socket::expires_never() {
  ++core_->generation;
  core_->expired = false;
  core_->timer.cancel();
}

void tls_socket::cancel() {
  error_code ignored;
  core_->socket.cancel(ignored);
}

void tls_socket::close() {
  ++core_->generation;
  core_->timer.cancel();
  error_code ignored;
  core_->socket.close(ignored);
}

error_code tls_socket::interrupted(const core& c, const error_code& ec) {
  if (c.expired && ec == asio::error::operation_aborted) return asio::error::timed_out;
  return ec;
}

// The same codes asio::ssl::stream reports, so callers see one vocabulary: eof for a close_notify,
// stream_truncated for a peer that hung up without one, the OpenSSL error (ssl category) otherwise.
error_code tls_socket::failure(core& c, int ssl_error) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
  unsigned long queued = ERR_get_error();
  ERR_clear_error();
  if (queued != 0) {
    if (ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return asio::ssl::error::stream_truncated;
    return error_code(static_cast<int>(queued), asio::error::get_ssl_category());
  }
  if (c.last_errno != 0) return error_code(c.last_errno, boost::system::system_category());
  if (c.peer_eof) return asio::ssl::error::stream_truncated;
  return asio::ssl::error::unspecified_system_error;
}

// SSL_MODE_RELEASE_BUFFERS gives the record buffers back once a record has been consumed, but not when
// SSL_read (or a handshake) stops for want of data from the socket: the read buffer (a whole record) would
// stay allocated for as long as the Store takes to answer. SSL_free_buffers releases both buffers when
// they hold nothing.
tls_socket::attempt tls_socket::blocked_or_failed(core& c, int ret) {
  int err = SSL_get_error(c.ssl, ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    SSL_free_buffers(c.ssl);  // refuses (harmlessly) when a partial record is pending
    return {err == SSL_ERROR_WANT_READ ? step::want_read : step::want_write};
  }
  return {step::failed, 0, failure(c, err)};
}

namespace {

// One OpenSSL I/O call with a clean error queue and errno record, as SSL_get_error needs.
template <class Call>
int ssl_call(tls_core& c, Call&& call) {
  ERR_clear_error();
  c.last_errno = 0;
  return call();
}

}  // namespace

tls_socket::attempt tls_socket::try_read(core& c, asio::mutable_buffer b) {
  std::size_t n = 0;
  int r = ssl_call(c, [&] { return SSL_read_ex(c.ssl, b.data(), b.size(), &n); });
  return r == 1 ? attempt{step::done, n} : blocked_or_failed(c, r);
}

tls_socket::attempt tls_socket::try_write(core& c, asio::const_buffer b) {
  std::size_t n = 0;
  int r = ssl_call(c, [&] { return SSL_write_ex(c.ssl, b.data(), b.size(), &n); });
  return r == 1 ? attempt{step::done, n} : blocked_or_failed(c, r);
}

asio::awaitable<error_code> tls_socket::connect(const asio::ip::tcp::resolver::results_type& endpoints) {
  core& c = *core_;
  if (c.expired) co_return asio::error::timed_out;
  auto [ec, endpoint] = co_await asio::async_connect(c.socket, endpoints, use_tuple);
  if (ec) co_return interrupted(c, ec);
  error_code ignored;
  c.socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  c.socket.non_blocking(true, ec);
  co_return ec;
}

asio::awaitable<error_code> tls_socket::handshake() {
  core& c = *core_;
  for (;;) {
    if (c.expired) co_return asio::error::timed_out;
    int r = ssl_call(c, [&] { return SSL_connect(c.ssl); });
    if (r == 1) co_return error_code{};
    const attempt a = blocked_or_failed(c, r);
    if (a.next == step::failed) co_return a.ec;
    auto wait = a.next == step::want_read ? asio::socket_base::wait_read : asio::socket_base::wait_write;
    auto [wait_ec] = co_await c.socket.async_wait(wait, use_tuple);
    if (wait_ec) co_return interrupted(c, wait_ec);
  }
}

tls_socket::attempt tls_socket::read_now(asio::mutable_buffer b) {
  core& c = *core_;
  if (c.expired) return {step::failed, 0, asio::error::timed_out};
  if (b.size() == 0) return {step::done};
  return try_read(c, b);
}

asio::awaitable<error_code> tls_socket::wait_ready(step s) {
  core& c = *core_;
  if (c.expired) co_return asio::error::timed_out;
  // Decrypted bytes waiting: no need to wait. (Not SSL_has_pending, which also counts part of a record
  // not yet decryptable: the read would ask for more at once, and this would never suspend.)
  if (s == step::want_read && SSL_pending(c.ssl) > 0) co_return error_code{};
  auto wait = s == step::want_write ? asio::socket_base::wait_write : asio::socket_base::wait_read;
  auto [ec] = co_await c.socket.async_wait(wait, use_tuple);
  co_return ec ? interrupted(c, ec) : ec;
}

}  // namespace esd::net::detail
