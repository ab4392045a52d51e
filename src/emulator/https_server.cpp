#include "emulator/https_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <exception>
#include <iostream>
#include <tuple>

namespace esd::emulator {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto handshake_timeout = 30s;
constexpr auto idle_timeout = 120s;  // between requests on a kept-alive connection
constexpr auto write_timeout = 30s;
constexpr auto shutdown_timeout = 5s;
constexpr auto hang_limit = 15min;  // a "hang" fault gives up when the client has not
constexpr std::size_t body_limit = 1 << 20;

const auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// co_spawn(..., detached) would swallow a coroutine's exception: log it instead.
void log_exception(const char* what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::cerr << "entitlement-store-emulator: " << what << ": " << ex.what() << "\n";
  } catch (...) {
    std::cerr << "entitlement-store-emulator: " << what << ": unknown exception\n";
  }
}

bool is_http_parse_error(const boost::system::error_code& ec) {
  return ec.category() == beast::http::make_error_code(beast::http::error::bad_target).category() &&
         ec != beast::http::error::end_of_stream && ec != beast::http::error::partial_message;
}

}  // namespace

https_server::https_server(asio::io_context& ioc, asio::ssl::context& tls, const tcp::endpoint& listen_at,
                           emulator_routes& routes)
    : ioc_(ioc), tls_(tls), acceptor_(ioc), routes_(routes) {
  acceptor_.open(listen_at.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(listen_at);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void https_server::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(),
                 [](std::exception_ptr e) { log_exception("accept loop stopped", e); });
}

asio::awaitable<void> https_server::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_), tuple_awaitable);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of file descriptors and the like: wait a moment rather than spin.
      std::cerr << "entitlement-store-emulator: accept failed: " << ec.message() << "\n";
      asio::steady_timer pause(acceptor_.get_executor(), 100ms);
      co_await pause.async_wait(tuple_awaitable);
      continue;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, session(std::move(socket)),
                   [](std::exception_ptr e) { log_exception("connection failed", e); });
  }
}

asio::awaitable<void> https_server::session(tcp::socket socket) {
  namespace http = beast::http;
  using namespace asio::experimental::awaitable_operators;

  asio::ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), tls_);
  auto& tcp_layer = beast::get_lowest_layer(stream);
  const auto close_now = [&] {
    boost::system::error_code ignored;
    tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp_layer.socket().close(ignored);
  };

  tcp_layer.expires_after(handshake_timeout);
  if (auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, tuple_awaitable); ec) {
    close_now();
    co_return;
  }
  routes_.record_handshake();

  beast::flat_buffer buffer;
  bool keep_going = true;
  while (keep_going) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(body_limit);
    parser.header_limit(64 * 1024);
    tcp_layer.expires_after(idle_timeout);
    auto [read_ec, read_n] = co_await http::async_read_header(stream, buffer, parser, tuple_awaitable);
    if (!read_ec && !parser.is_done()) {
      // A client that asks first (curl does for large bodies) gets its go-ahead; an oversized body was
      // already refused while reading the header.
      if (const auto expect = parser.get()[http::field::expect]; beast::iequals(expect, "100-continue")) {
        http::response<http::empty_body> go_ahead{http::status::continue_, 11};
        tcp_layer.expires_after(write_timeout);
        std::tie(read_ec, read_n) = co_await http::async_write(stream, go_ahead, tuple_awaitable);
      }
      if (!read_ec) {
        tcp_layer.expires_after(idle_timeout);
        std::tie(read_ec, read_n) = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
      }
    }
    (void)read_n;
    if (read_ec) {
      if (read_ec == http::error::body_limit || read_ec == http::error::header_limit ||
          is_http_parse_error(read_ec)) {
        const bool too_large = read_ec == http::error::body_limit;
        const unsigned status = too_large ? 413 : read_ec == http::error::header_limit ? 431 : 400;
        http_response res = json_response(
            static_cast<http::status>(status),
            boost::json::object{{"error", too_large
                                              ? "the request body is larger than 1 MiB"
                                              : "the request is not valid HTTP/1.1: " + read_ec.message()}});
        res.keep_alive(false);
        routes_.record_unreadable(status);
        tcp_layer.expires_after(write_timeout);
        co_await http::async_write(stream, res, tuple_awaitable);
        break;
      }
      // end_of_stream, timeout, reset, truncated TLS: the client went away.
      close_now();
      co_return;
    }

    http_request req = parser.release();
    const auto started = std::chrono::steady_clock::now();
    routed_answer answer = routes_.route(req);
    if (answer.delayed) {
      if (const auto delay = routes_.latency(); delay.count() > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor, delay);
        co_await timer.async_wait(tuple_awaitable);
      }
    }

    switch (answer.how) {
      case delivery::respond: {
        answer.response.version(req.version());
        answer.response.keep_alive(req.keep_alive());
        routes_.sending(answer);
        tcp_layer.expires_after(write_timeout);
        auto [write_ec, written] = co_await http::async_write(stream, answer.response, tuple_awaitable);
        (void)written;
        routes_.record(req, answer, std::chrono::steady_clock::now() - started);
        if (write_ec) {
          close_now();
          co_return;
        }
        keep_going = req.keep_alive();
        break;
      }
      case delivery::drop:
        routes_.sending(answer);
        routes_.record(req, answer, std::chrono::steady_clock::now() - started);
        close_now();
        co_return;
      case delivery::truncate: {
        const std::string& body = answer.response.body();
        std::string raw =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: " +
            std::to_string(body.size() + 4096) + "\r\n\r\n" + body;
        routes_.sending(answer);
        tcp_layer.expires_after(write_timeout);
        co_await asio::async_write(stream, asio::buffer(raw), tuple_awaitable);
        routes_.record(req, answer, std::chrono::steady_clock::now() - started);
        close_now();
        co_return;
      }
      case delivery::hang: {
        routes_.record(req, answer, std::chrono::steady_clock::now() - started);
        // Wait until the client sends something more or closes (readable), or the limit passes.
        tcp_layer.expires_never();
        asio::steady_timer limit(co_await asio::this_coro::executor, hang_limit);
        co_await (limit.async_wait(tuple_awaitable) ||
                  tcp_layer.socket().async_wait(tcp::socket::wait_read, tuple_awaitable));
        close_now();
        co_return;
      }
    }
  }

  tcp_layer.expires_after(shutdown_timeout);
  co_await stream.async_shutdown(tuple_awaitable);
  close_now();
}

}  // namespace esd::emulator
