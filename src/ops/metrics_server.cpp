#include "ops/metrics_server.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <stdexcept>
#include <string_view>

#include "ops/log.hpp"
#include "ops/log_failure.hpp"

namespace esd::ops {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace detail {

struct metrics_server_state {
  metrics_server_state(asio::any_io_executor ex, metrics& r, std::function<health_check()> ready_check)
      : executor(ex), acceptor(ex), registry(r), ready(std::move(ready_check)) {}

  void close_all() {
    stopped = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    // Each connection's pending read or write completes with an error and its coroutine ends, taking
    // the stream out of `open`.
    for (auto& [id, c] : open) {
      c.stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      c.stream->close();
    }
  }

  // At the cap, the connection that has waited longest without a request in progress makes room: an idle
  // keep-alive connection costs its client one reconnect, while refusing the newcomer would let a few
  // idle ones lock every probe out. False when every connection is being answered.
  bool evict_one_idle() {
    for (auto it = open.begin(); it != open.end(); ++it) {
      if (it->second.answering) continue;
      boost::system::error_code ignored;
      it->second.stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      it->second.stream->close();
      open.erase(it);  // its coroutine still holds the stream, and ends on the cancelled read
      return true;
    }
    return false;
  }

  struct connection {
    std::shared_ptr<beast::tcp_stream> stream;
    bool answering = false;  // a request has arrived and its answer is not written yet
  };

  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  unsigned short port = 0;
  metrics& registry;
  std::function<health_check()> ready;
  bool stopped = false;
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, connection> open;  // by id, so in the order accepted
};

}  // namespace detail

namespace {

using state = detail::metrics_server_state;

// A connection with no request under way is closed after idle_timeout (before its first request and between
// requests on a kept-alive one); a request, once its first bytes are in, has read_timeout to arrive whole.
constexpr auto idle_timeout = 5s;
constexpr auto read_timeout = 10s;
constexpr auto write_timeout = 10s;  // a scraper that stops reading
constexpr auto linger_timeout = 1s;  // draining a bad request before closing
constexpr std::size_t linger_limit = 64 * 1024;
constexpr std::size_t body_limit = 8 * 1024;
// Far below the default open-file limit of a service, so probes and scrapes can never
// starve the database and Store connections of descriptors.
constexpr std::size_t max_connections = 128;

const auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

[[noreturn]] void bad_address(const std::string& listen, const std::string& why) {
  throw std::runtime_error("metrics listen address '" + listen + "': " + why);
}

// "127.0.0.1:9187", "[::1]:9187", "localhost:9187" or ":9187" (empty host: all interfaces).
struct listen_spec {
  std::string host;
  unsigned short port;
};

listen_spec parse_listen(const std::string& listen) {
  std::string host;
  std::string_view port_text;
  if (listen.starts_with('[')) {
    const auto close = listen.find("]:");
    if (close == std::string::npos) bad_address(listen, "expected [IPv6]:port, e.g. [::1]:9187");
    host = listen.substr(1, close - 1);
    port_text = std::string_view(listen).substr(close + 2);
    if (host.empty()) bad_address(listen, "the IPv6 address in brackets is empty");
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) bad_address(listen, "expected host:port, e.g. 127.0.0.1:9187 or :9187");
    host = listen.substr(0, colon);
    port_text = std::string_view(listen).substr(colon + 1);
    if (host.find(':') != std::string::npos)
      bad_address(listen, "write an IPv6 address in brackets, e.g. [::1]:9187");
  }
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
    bad_address(listen, "the port must be a number from 0 to 65535");
  }
  return {host, static_cast<unsigned short>(port)};
}

void open_acceptor(tcp::acceptor& acceptor, const tcp::endpoint& at, bool dual_stack) {
  acceptor.open(at.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  if (dual_stack) acceptor.set_option(asio::ip::v6_only(false));
  acceptor.bind(at);
  acceptor.listen(asio::socket_base::max_listen_connections);
}

void bind(state& st, const std::string& listen) {
  const listen_spec spec = parse_listen(listen);
  try {
    if (spec.host.empty()) {
      // All interfaces: IPv6 and IPv4 on one socket where the host has IPv6, IPv4 alone otherwise.
      boost::system::error_code probe;
      st.acceptor.open(tcp::v6(), probe);
      if (!probe) {
        st.acceptor.close();
        open_acceptor(st.acceptor, tcp::endpoint(tcp::v6(), spec.port), true);
      } else {
        open_acceptor(st.acceptor, tcp::endpoint(tcp::v4(), spec.port), false);
      }
    } else {
      boost::system::error_code ec;
      const auto address = asio::ip::make_address(spec.host == "localhost" ? "127.0.0.1" : spec.host, ec);
      if (ec) bad_address(listen, "'" + spec.host + "' is not an IP address");
      open_acceptor(st.acceptor, tcp::endpoint(address, spec.port), false);
    }
    st.port = st.acceptor.local_endpoint().port();
  } catch (const boost::system::system_error& e) {
    boost::system::error_code ignored;
    st.acceptor.close(ignored);
    bad_address(listen, "cannot listen: " + e.code().message());
  }
}

http::response<http::string_body> text_response(http::status status, std::string body, unsigned version) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  return res;
}

http::response<http::string_body> answer(state& st, const http::request<http::string_body>& req) {
  const unsigned version = req.version();
  if (req.method() != http::verb::get) {
    auto res = text_response(http::status::method_not_allowed, "only GET is supported\n", version);
    res.set(http::field::allow, "GET");
    return res;
  }
  std::string_view path = req.target();
  path = path.substr(0, path.find('?'));  // a scrape config may add parameters; they mean nothing here

  if (path == "/metrics") {
    try {
      auto res = text_response(http::status::ok, st.registry.render(), version);
      res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      return res;
    } catch (const std::exception& e) {
      return text_response(http::status::internal_server_error,
                           std::string("cannot render metrics: ") + e.what() + "\n", version);
    }
  }
  if (path == "/healthz") return text_response(http::status::ok, "ok\n", version);
  if (path == "/readyz") {
    try {
      const health_check check = st.ready ? st.ready() : health_check{true, ""};
      if (check.ok) return text_response(http::status::ok, "ready\n", version);
      return text_response(http::status::service_unavailable, check.detail + "\n", version);
    } catch (const std::exception& e) {
      return text_response(http::status::service_unavailable,
                           std::string("readiness check failed: ") + e.what() + "\n", version);
    }
  }
  return text_response(http::status::not_found, "not found; try /metrics, /healthz or /readyz\n", version);
}

// Input the client got wrong (answered with a 4xx), as opposed to a connection that went away.
bool is_bad_request(const boost::system::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

// Closing a socket with unread input makes the kernel send a reset, which can destroy the error response
// before the client reads it. So stop sending, then read and discard what the client still sends, briefly.
asio::awaitable<void> drain(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(linger_timeout);
  std::array<char, 4096> sink;
  const auto sink_buffer = asio::buffer(sink);
  for (std::size_t drained = 0; drained < linger_limit;) {
    auto [ec, n] = co_await stream.async_read_some(sink_buffer, tuple_awaitable);
    if (ec) break;
    drained += n;
  }
}

asio::awaitable<void> serve_connection(std::shared_ptr<state> st, std::uint64_t id,
                                       std::shared_ptr<beast::tcp_stream> stream) {
  struct leave_open_set {
    state& s;
    std::uint64_t id;
    ~leave_open_set() { s.open.erase(id); }
  } guard{*st, id};

  const auto set_answering = [&](bool answering) {
    if (auto it = st->open.find(id); it != st->open.end()) it->second.answering = answering;
  };
  beast::flat_buffer buffer;
  bool keep_going = !st->stopped;  // stop() may have run between the accept and this first step
  while (keep_going) {
    if (buffer.size() == 0) {
      stream->expires_after(idle_timeout);
      auto [idle_ec, n] = co_await stream->async_read_some(buffer.prepare(4096), tuple_awaitable);
      if (idle_ec) break;  // idle too long, gone, evicted or stopped
      buffer.commit(n);
    }
    http::request_parser<http::string_body> parser;
    parser.body_limit(body_limit);
    stream->expires_after(read_timeout);
    auto [read_ec, read_n] = co_await http::async_read(*stream, buffer, parser, tuple_awaitable);
    (void)read_n;
    if (read_ec) {
      if (is_bad_request(read_ec)) {
        const bool too_large = read_ec == http::error::body_limit;
        const bool header_too_large = read_ec == http::error::header_limit;
        auto res = text_response(too_large          ? http::status::payload_too_large
                                 : header_too_large ? http::status::request_header_fields_too_large
                                                    : http::status::bad_request,
                                 too_large ? std::string("the request body is larger than 8 KiB\n")
                                           : "bad request: " + read_ec.message() + "\n",
                                 11);
        res.keep_alive(false);
        res.prepare_payload();
        stream->expires_after(write_timeout);
        auto [write_ec, written] = co_await http::async_write(*stream, res, tuple_awaitable);
        (void)written;
        if (!write_ec) co_await drain(*stream);
      }
      break;  // bad input answered, or end of stream, timeout, reset, stop(): close
    }

    set_answering(true);
    auto res = answer(*st, parser.get());
    res.keep_alive(parser.get().keep_alive() && !st->stopped);
    res.prepare_payload();
    stream->expires_after(write_timeout);
    auto [write_ec, written] = co_await http::async_write(*stream, res, tuple_awaitable);
    (void)written;
    set_answering(false);
    keep_going = !write_ec && res.keep_alive();
  }

  boost::system::error_code ignored;
  stream->socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream->close();
}

asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
  while (!st->stopped && st->acceptor.is_open()) {
    auto [ec, socket] = co_await st->acceptor.async_accept(tuple_awaitable);
    if (st->stopped || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of file descriptors and the like: wait a moment rather than spin.
      log::warning("metrics endpoint: accept failed: " + ec.message());
      asio::steady_timer pause(st->executor, 100ms);
      co_await pause.async_wait(tuple_awaitable);
      continue;
    }
    if (st->open.size() >= max_connections && !st->evict_one_idle()) {
      boost::system::error_code ignored;
      socket.close(ignored);  // every connection is being answered: a scraper retries, a flood does not grow
      continue;
    }
    auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
    const std::uint64_t id = st->next_id++;
    st->open.emplace(id, state::connection{stream});
    asio::co_spawn(st->executor, serve_connection(st, id, std::move(stream)),
                   log_failure("metrics endpoint: connection failed", log::level::warning));
  }
}

}  // namespace

metrics_server::metrics_server(asio::any_io_executor ex, const std::string& listen, metrics& registry,
                               std::function<health_check()> ready)
    : state_(std::make_shared<state>(ex, registry, std::move(ready))) {
  bind(*state_, listen);
}

metrics_server::~metrics_server() { stop(); }

unsigned short metrics_server::port() const { return state_->port; }

void metrics_server::start() {
  asio::co_spawn(state_->executor, accept_loop(state_),
                 log_failure("metrics endpoint: accept loop stopped", log::level::warning));
}

void metrics_server::stop() {
  // Inline when called on the event loop; otherwise queued there, since the sockets belong to it.
  asio::dispatch(state_->executor, [st = state_] { st->close_all(); });
}

}  // namespace esd::ops
