// Private to src/net: a TLS client connection that runs OpenSSL directly on the socket, for Beast's HTTP
// reads and writes (it is an AsyncReadStream and an AsyncWriteStream).
//
// Why not asio::ssl::stream: that one keeps four record-sized buffers per connection for its memory BIO
// pair and its own staging, whether the connection is busy or idle. Here OpenSSL reads from and writes to the
// socket itself (through a small BIO that never raises SIGPIPE), with SSL_MODE_RELEASE_BUFFERS: a
// connection waiting for the Store's answer holds no record buffer at all, because SSL_read is only
// tried until it would block, and the then empty buffers are freed (SSL_free_buffers; the mode alone
// keeps the read buffer while SSL_read waits for the socket). A waiting connection then holds only the SSL
// object and the session with the peer's certificate (bench/RESULTS.md has what this saves).
//
// Deadlines: expires_at() arms a timer that cancels the socket's pending wait; the operation then fails
// with asio::error::timed_out, and so does every later one until the deadline is moved.
//
// Single thread, like the rest of the client.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace esd::net::detail {

namespace asio = boost::asio;

// The state of one connection. Shared only so that a timer handler queued for an old deadline can see
// that the connection is gone (it holds a weak_ptr); otherwise owned by the tls_socket.
struct tls_core {
  tls_core(const asio::any_io_executor& ex, SSL_CTX* ctx);
  ~tls_core();
  tls_core(const tls_core&) = delete;
  tls_core& operator=(const tls_core&) = delete;
  asio::ip::tcp::socket socket;
  asio::steady_timer timer;
  SSL* ssl = nullptr;
  unsigned generation = 0;  // bumped by every expires_*: a late handler of an older deadline does nothing
  bool expired = false;     // the current deadline has passed
  bool peer_eof = false;    // recv() returned 0 (for BIO_CTRL_EOF)
  int last_errno = 0;       // of the BIO's last failed recv/send
};

class tls_socket {
 public:
  using executor_type = asio::any_io_executor;
  using clock = std::chrono::steady_clock;

  // ctx: the client context (make_client_tls_context); it must outlive this object.
  tls_socket(const executor_type& ex, SSL_CTX* ctx);
  ~tls_socket();
  tls_socket(const tls_socket&) = delete;
  tls_socket& operator=(const tls_socket&) = delete;

  executor_type get_executor() { return core_->socket.get_executor(); }
  asio::ip::tcp::socket& socket() { return core_->socket; }
  SSL* native_handle() { return core_->ssl; }

  // Every operation started after this fails with timed_out once `deadline` has passed, and one that is
  // waiting at that moment is interrupted.
  void expires_at(clock::time_point deadline);
  void expires_never();

  // TCP connect to the first endpoint that answers, then the TLS client handshake (call
  // bind_peer_identity on native_handle() first). Both under the current deadline.
  asio::awaitable<boost::system::error_code> connect(const asio::ip::tcp::resolver::results_type& endpoints);
  asio::awaitable<boost::system::error_code> handshake();

  enum class step { done, want_read, want_write, failed };
  struct attempt {
    attempt() = default;
    attempt(step s, std::size_t n = 0, boost::system::error_code e = {}) : next(s), bytes(n), ec(e) {}
    step next = step::done;
    std::size_t bytes = 0;
    boost::system::error_code ec;
  };

  // One read of what has already arrived, without waiting: done with the bytes read; want_read or
  // want_write when nothing more can be read until the socket is ready (wait_ready); failed with why
  // (eof for a close_notify, stream_truncated for a close without one, timed_out past the deadline).
  attempt read_now(asio::mutable_buffer b);

  // Waits, under the current deadline, until the socket is ready for what read_now asked for (want_read:
  // the peer sent something or closed; at once when OpenSSL already holds decrypted bytes). Holds no
  // buffer meanwhile: a read started before the answer arrives would hold its buffer all along.
  asio::awaitable<boost::system::error_code> wait_ready(step s);

  // Frees the TLS record buffers if they hold nothing (a connection going back to the pool to wait).
  void release_buffers() { SSL_free_buffers(core_->ssl); }

  // Interrupts pending operations with operation_aborted (timed_out if the deadline passed).
  void cancel();
  // Closes the socket without a close_notify (see connection::close).
  void close();

  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return asio::async_compose<ReadHandler, void(boost::system::error_code, std::size_t)>(
        io_op<true>(core_.get(), first_buffer(buffers)), handler, core_->socket);
  }

  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    io_op<false> op(core_.get(), asio::const_buffer());
    // One TLS record for Beast's header and body pieces rather than one per piece: gather up to a record.
    std::size_t pieces = 0;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      if (asio::const_buffer(*it).size() != 0) ++pieces;
    }
    if (pieces <= 1) {
      op.buffer = first_buffer(buffers);
    } else {
      op.gathered = std::make_shared<std::string>();
      for (auto it = asio::buffer_sequence_begin(buffers);
           it != asio::buffer_sequence_end(buffers) && op.gathered->size() < max_record; ++it) {
        asio::const_buffer b(*it);
        std::size_t n = std::min(b.size(), max_record - op.gathered->size());
        op.gathered->append(static_cast<const char*>(b.data()), n);
      }
      op.buffer = asio::const_buffer(op.gathered->data(), op.gathered->size());
    }
    return asio::async_compose<WriteHandler, void(boost::system::error_code, std::size_t)>(
        std::move(op), handler, core_->socket);
  }

 private:
  static constexpr std::size_t max_record = 16 * 1024;

  using core = tls_core;

  template <class Buffers>
  static auto first_buffer(const Buffers& buffers) {
    using buffer_type = std::conditional_t<asio::is_mutable_buffer_sequence<Buffers>::value,
                                           asio::mutable_buffer, asio::const_buffer>;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      buffer_type b(*it);
      if (b.size() != 0) return b;
    }
    return buffer_type();
  }

  // One SSL_read_ex / SSL_write_ex, and what it asks for next.
  static attempt try_read(core& c, asio::mutable_buffer b);
  static attempt try_write(core& c, asio::const_buffer b);
  static attempt blocked_or_failed(core& c, int ret);
  static boost::system::error_code failure(core& c, int ssl_error);
  static boost::system::error_code interrupted(const core& c, const boost::system::error_code& ec);

  template <bool Reading>
  struct io_op {
    using buffer_type = std::conditional_t<Reading, asio::mutable_buffer, asio::const_buffer>;
    io_op(core* owner, buffer_type b) : c(owner), buffer(b) {}
    core* c;
    buffer_type buffer;
    std::shared_ptr<std::string> gathered;  // writes only: the pieces copied into one record
    bool waited = false;  // an asynchronous wait happened, so completing now is not "immediate"
    bool posted = false;  // a result reached before any wait, delivered through post()
    attempt result;

    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}) {
      if (posted) return self.complete(result.ec, result.bytes);
      if (ec) return self.complete(interrupted(*c, ec), 0);
      if (c->expired) return finish(self, {step::failed, 0, asio::error::timed_out});
      if (buffer.size() == 0) return finish(self, {step::done});
      attempt a;
      if constexpr (Reading) {
        a = try_read(*c, buffer);
      } else {
        a = try_write(*c, buffer);
      }
      if (a.next == step::want_read || a.next == step::want_write) {
        waited = true;
        c->socket.async_wait(a.next == step::want_read ? asio::socket_base::wait_read
                                                       : asio::socket_base::wait_write,
                             std::move(self));
        return;
      }
      finish(self, a);
    }

    // The completion handler may not run inside the initiating call: post when nothing was awaited.
    template <class Self>
    void finish(Self& self, attempt a) {
      if (waited) return self.complete(a.ec, a.bytes);
      result = a;
      posted = true;
      asio::post(c->socket.get_executor(), std::move(self));
    }
  };

  std::shared_ptr<core> core_;
};

}  // namespace esd::net::detail
