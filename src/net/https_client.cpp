// https_client::send: one request over a pooled or new connection, with a deadline on every step and one
// retry when a pooled connection turns out to have been closed by the server while it sat idle.
//
// Lifetime: the request coroutine holds the pool by shared_ptr, never the https_client, so destroying the
// client while requests are in flight is safe (see ~https_client).
#include "net/https_client.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>

#include "net/connection_pool.hpp"
#include "net/peer_verification.hpp"

namespace esd::net {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using detail::clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// One vocabulary for callers: Beast's stream timeout is asio's timed_out, and an oversized body is
// message_size, as the header promises.
error_code normalize(error_code ec) {
  if (ec == beast::error::timeout) return asio::error::timed_out;
  if (ec == http::error::body_limit) return asio::error::message_size;
  return ec;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// A header value must not be able to end the header (request smuggling, header injection).
bool is_field_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::string host_header(const https_url& url) {
  std::string h = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  if (url.port != 443) h += ":" + std::to_string(url.port);
  return h;
}

// What build_message would refuse: a method or header that could break the request's framing.
bool well_formed(const http_request& in) {
  if (!is_token(in.method)) return false;
  if (in.bearer_token && !is_field_value(*in.bearer_token)) return false;
  return std::all_of(in.headers.begin(), in.headers.end(),
                     [](const auto& h) { return is_token(h.first) && is_field_value(h.second); });
}

// Takes the headers and body out of `in` (one copy of them in memory while the answer is awaited, not two).
// Built once a connection is had, so that requests waiting for one hold no message.
std::optional<http::request<http::string_body>> build_message(http_request& in, const https_url& url,
                                                              const client_options& options) {
  http::request<http::string_body> msg;
  msg.version(11);
  if (!well_formed(in)) return std::nullopt;
  if (auto verb = http::string_to_verb(in.method); verb != http::verb::unknown) {
    msg.method(verb);
  } else {
    msg.method_string(in.method);
  }
  msg.target(url.target);
  bool has_content_type = false;
  // Taken out too: the message holds the only copy of the headers (the service token among them).
  const auto headers = std::move(in.headers);
  in.headers.clear();
  for (const auto& [name, value] : headers) {
    msg.insert(name, value);
    if (beast::iequals(name, "content-type")) has_content_type = true;
  }
  // Framing and identity are ours to set, whatever the caller passed.
  msg.erase(http::field::host);
  msg.erase(http::field::content_length);
  msg.erase(http::field::transfer_encoding);
  msg.set(http::field::host, host_header(url));
  msg.set(http::field::user_agent, options.user_agent);
  if (in.bearer_token) {
    msg.set(http::field::authorization, "Bearer " + *in.bearer_token);
    in.bearer_token.reset();
  }
  if (!in.body.empty() && !has_content_type) msg.set(http::field::content_type, "application/json");
  msg.body() = std::move(in.body);
  msg.prepare_payload();
  return msg;
}

// Resolve, then (once it is this connection's turn) TCP connect and TLS handshake, each part within
// connect_timeout. Waiting for the turn is bounded by `turn_deadline` (the request's), not connect_timeout:
// with a slow server and a cold start, the last of hundreds of new connections would otherwise time out
// in the client's own queue before saying a word to the server.
asio::awaitable<error_code> connect(detail::connection& c, const https_url& url, detail::connection_pool& pool,
                                    detail::tls_session_slot& session, clock::time_point turn_deadline) {
  const auto resolve_deadline = clock::now() + pool.options().connect_timeout;

  // getaddrinfo cannot be interrupted, so the deadline is checked when it returns.
  asio::ip::tcp::resolver resolver(c.stream.get_executor());
  // Named local (GCC 12).
  const std::string service = std::to_string(url.port);
  auto [resolve_ec, endpoints] =
      co_await resolver.async_resolve(url.host, service, asio::ip::tcp::resolver::numeric_service, use_tuple);
  if (resolve_ec) co_return resolve_ec;
  if (pool.closed()) co_return asio::error::operation_aborted;
  if (clock::now() >= resolve_deadline) co_return asio::error::timed_out;

  // The turn covers the TCP connect too, so that the server never sees a connection sit silent.
  if (!co_await pool.begin_handshake(turn_deadline))
    co_return pool.closed() ? asio::error::operation_aborted : asio::error::timed_out;
  c.stream.expires_at(clock::now() + pool.options().connect_timeout);
  auto ec = co_await c.stream.connect(endpoints);
  if (!ec) ec = detail::bind_peer_identity(c.stream.native_handle(), url.host);
  if (!ec) session.attach(c.stream.native_handle());
  if (!ec) ec = co_await c.stream.handshake();
  pool.end_handshake();
  c.stream.expires_never();
  co_return ec;
}

struct exchange_result {
  error_code ec;
  bool nothing_received = false;  // the failure happened before any byte of a response arrived
  bool keep_alive = false;
  http_response response;
};

// Errors that mean "the peer had already hung up" when they happen before any response byte.
bool looks_like_closed_by_peer(error_code ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated;
}

// Gives bytes to the parser; returns how many it took. It stops short at a header cut in two (those bytes
// come back with the rest of the header) and at the end of the message.
std::size_t feed(http::response_parser<http::string_body>& parser, asio::const_buffer data, error_code& ec) {
  std::size_t taken = 0;
  while (data.size() > 0 && !parser.is_done()) {
    const std::size_t used = parser.put(data, ec);
    taken += used;
    data += used;
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
    if (ec || used == 0) break;
  }
  return taken;
}

// Reads one response. Nothing is allocated until its first bytes are here (with a slow Store, a thousand
// requests wait at once, and a new connection's session tickets arrive long before the answer), and then
// everything that has arrived is read and parsed in one go, a whole TLS record per read: a wave of
// answers is not left half-read, each holding an OpenSSL record buffer, while the event loop goes
// round them 512 bytes at a time as Beast's own read would. Records are decrypted into one buffer per
// thread and parsed from there; `buffer` keeps only what the parser could not take yet.
asio::awaitable<error_code> read_response(detail::tls_socket& stream, beast::flat_buffer& buffer,
                                          http::response_parser<http::string_body>& parser) {
  using step = detail::tls_socket::step;
  static thread_local std::array<char, 16 * 1024> scratch;
  if (buffer.size() > 0) {  // what came after an interim answer, in the same read
    error_code ec;
    buffer.consume(feed(parser, buffer.data(), ec));
    if (ec) co_return ec;
    if (parser.is_done()) co_return error_code{};
  }
  step wait_for = step::want_read;
  for (;;) {
    if (auto ec = co_await stream.wait_ready(wait_for)) co_return ec;
    for (;;) {
      auto a = stream.read_now(asio::buffer(scratch));
      if (a.next == step::want_read || a.next == step::want_write) {
        wait_for = a.next;
        break;
      }
      if (a.next == step::failed) {
        if (a.ec != asio::error::eof) co_return a.ec;
        // The server closed: the end of a body delimited by the close, or a cut-off answer.
        if (!parser.got_some() && buffer.size() == 0) co_return http::error::end_of_stream;
        error_code ec;
        parser.put_eof(ec);
        co_return ec;
      }
      asio::const_buffer fresh(scratch.data(), a.bytes);
      error_code ec;
      if (buffer.size() == 0) fresh += feed(parser, fresh, ec);
      if (!ec && fresh.size() > 0) {
        // Kept: a header cut in two, or bytes beyond the answer (which keep the connection from reuse).
        buffer.commit(asio::buffer_copy(buffer.prepare(fresh.size()), fresh));
        if (!parser.is_done()) buffer.consume(feed(parser, buffer.data(), ec));
      }
      if (ec) co_return ec;
      if (parser.is_done()) co_return error_code{};
    }
  }
}

// Write the request and read the whole response, both within request_timeout.
asio::awaitable<exchange_result> exchange(detail::connection& c, const http::request<http::string_body>& msg,
                                          const detail::connection_pool& pool) {
  const auto& options = pool.options();
  const auto deadline = clock::now() + options.request_timeout;
  exchange_result out;

  c.stream.expires_at(deadline);
  auto [write_ec, written] = co_await http::async_write(c.stream, msg, use_tuple);
  if (write_ec) {
    out.ec = normalize(write_ec);
    out.nothing_received = out.ec != asio::error::timed_out && out.ec != asio::error::operation_aborted;
    co_return out;
  }
  if (pool.closed()) {
    out.ec = asio::error::operation_aborted;
    co_return out;
  }

  // The read buffer lives as long as this exchange, not as long as the connection: an idle pooled
  // connection holds no buffer.
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  error_code read_ec;
  bool interim_seen = false;
  for (;;) {
    parser.emplace();
    parser->body_limit(options.max_response_bytes);
    parser->header_limit(64 * 1024);  // Beast's default (8 KiB) is tight for some gateways' headers
    if (msg.method() == http::verb::head) parser->skip(true);
    read_ec = co_await read_response(c.stream, buffer, *parser);
    if (read_ec) break;
    // An interim answer (100 Continue, 103 Early Hints) is not the answer: the final one follows.
    const unsigned status = parser->get().result_int();
    if (status < 100 || status >= 200 || status == 101) break;
    interim_seen = true;
  }
  c.stream.expires_never();
  if (read_ec) {
    out.ec = normalize(read_ec);
    out.nothing_received =
        !interim_seen && !parser->got_some() && buffer.size() == 0 && looks_like_closed_by_peer(read_ec);
    co_return out;
  }

  auto& res = parser->get();
  out.response.status = res.result_int();
  for (const auto& field : res) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    auto [it, inserted] = out.response.headers.try_emplace(std::move(name), field.value());
    if (!inserted) {  // repeated field: combine as RFC 9110 5.3 allows
      it->second += ", ";
      it->second += field.value();
    }
  }
  // Bytes beyond the response would be read as the start of the next one: do not reuse such a connection.
  out.keep_alive = parser->keep_alive() && buffer.size() == 0;
  out.response.body = std::move(res.body());
  co_return out;
}

asio::awaitable<std::pair<error_code, http_response>> send_on_pool(
    std::shared_ptr<detail::connection_pool> pool, http_request request) {
  using result = std::pair<error_code, http_response>;
  ++pool->stats.requests;
  auto url = parse_https_url(request.url);
  if (!url || !well_formed(request)) co_return result{asio::error::invalid_argument, {}};

  // Waiting for a free connection counts against request_timeout.
  const auto wait_deadline = clock::now() + pool->options().request_timeout;
  auto [acquire_ec, lease] = co_await pool->acquire(url->host, url->port, wait_deadline);
  if (acquire_ec) co_return result{acquire_ec, {}};
  auto msg = build_message(request, *url, pool->options());
  if (!msg) co_return result{asio::error::invalid_argument, {}};

  for (bool retried = false;; retried = true) {
    if (!lease.reused()) {
      if (auto ec = co_await connect(lease.conn(), *url, *pool, lease.tls_session(), wait_deadline))
        co_return result{ec, {}};
      ++pool->stats.tls_handshakes;
      if (SSL_session_reused(lease.conn().stream.native_handle()) == 1) ++pool->stats.tls_resumed;
    }
    auto r = co_await exchange(lease.conn(), *msg, *pool);
    if (!r.ec) {
      if (lease.reused()) ++pool->stats.reused;
      if (r.keep_alive) {
        lease.conn().stream.release_buffers();
        lease.recycle();
      } else {
        lease.discard();
      }
      co_return result{{}, std::move(r.response)};
    }
    if (!retried && lease.reused() && r.nothing_received && request.retry_on_stale_connection &&
        !pool->closed()) {
      ++pool->stats.stale_retries;
      lease.replace_with_fresh();
      continue;
    }
    co_return result{r.ec, {}};  // the lease closes the connection
  }
}

}  // namespace

struct https_client::impl {
  std::shared_ptr<detail::connection_pool> pool;
};

https_client::https_client(asio::any_io_executor ex, asio::ssl::context& tls, client_options options)
    : impl_(std::make_unique<impl>()) {
  impl_->pool = std::make_shared<detail::connection_pool>(std::move(ex), tls, std::move(options));
}

// Requests still in flight are aborted (their I/O is cancelled) and complete with operation_aborted the next
// time the io_context runs; if the io_context is destroyed instead, their frames are destroyed with it and
// release the pool. Preconditions: called on the io_context's thread (or while it does not run), before the
// io_context is destroyed. The ssl::context only needs to outlive the client.
https_client::~https_client() {
  if (impl_) impl_->pool->shutdown();
}

asio::awaitable<std::pair<boost::system::error_code, http_response>> https_client::send(
    http_request request) {
  return send_on_pool(impl_->pool, std::move(request));
}

void https_client::close_idle() { impl_->pool->close_idle(); }

const client_stats& https_client::stats() const { return impl_->pool->stats; }

}  // namespace esd::net
