#define BOOST_TEST_MODULE metrics_server
#include <boost/test/unit_test.hpp>

// The /metrics, /healthz, /readyz endpoint over real sockets: the server runs on its own io_context
// thread, the test drives it with a blocking Beast client.

#include <sys/resource.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ops/metrics.hpp"
#include "ops/metrics_server.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using esd::ops::metrics;

namespace {

// True when the server has closed the connection (EOF or reset, nothing more to read).
bool closed_by_server(tcp::socket& socket) {
  char byte;
  boost::system::error_code ec;
  socket.read_some(asio::buffer(&byte, 1), ec);
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

// The server on 127.0.0.1:0 with its own event-loop thread.
struct running_server {
  asio::io_context ioc;
  metrics registry;
  std::atomic<bool> ready{true};
  std::atomic<bool> stopped{false};
  std::optional<esd::ops::metrics_server> server;
  std::thread loop;

  running_server() {
    registry.describe_counter("esd_events_total", "Events processed.");
    registry.inc("esd_events_total", {{"outcome", "ok"}}, 5);
    server.emplace(ioc.get_executor(), "127.0.0.1:0", registry, [this] {
      return ready ? esd::ops::health_check{true, ""} : esd::ops::health_check{false, "database unreachable"};
    });
    server->start();
    loop = std::thread([this] { ioc.run(); });
  }
  // stop() must end every coroutine, or run() never returns and this join hangs the test.
  ~running_server() {
    if (!stopped) server->stop();
    if (loop.joinable()) loop.join();
  }
  void stop() {
    stopped = true;
    server->stop();
  }
};

struct client {
  asio::io_context ioc;
  tcp::socket socket{ioc};
  beast::flat_buffer buffer;

  explicit client(unsigned short port) {
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  http::response<http::string_body> request(http::verb verb, const std::string& target,
                                            bool keep_alive = true, std::string body = {}) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(keep_alive);
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(socket, req);
    return read();
  }

  http::response<http::string_body> read() {
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    return res;
  }

  bool closed_by_server() { return ::closed_by_server(socket); }
};

// Raises this process's open-file limit to what the test needs: each connection costs a descriptor on
// both ends here.
void allow_open_files(rlim_t wanted) {
  rlimit lim{};
  BOOST_TEST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
  if (lim.rlim_cur >= wanted) return;
  BOOST_TEST_REQUIRE(lim.rlim_max >= wanted, "the hard open-file limit is below " << wanted);
  lim.rlim_cur = wanted;
  BOOST_TEST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &lim) == 0);
}

// Connections opened and left without a word, on one io_context (a client each would cost descriptors).
std::vector<tcp::socket> idle_connections(asio::io_context& ioc, unsigned short port, int n) {
  std::vector<tcp::socket> sockets;
  for (int i = 0; i < n; ++i) {
    sockets.emplace_back(ioc);
    sockets.back().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  return sockets;
}


}  // namespace

BOOST_AUTO_TEST_SUITE(server)

BOOST_AUTO_TEST_CASE(metrics_endpoint_serves_the_registry) {
  running_server s;
  BOOST_TEST(s.server->port() != 0);
  client c(s.server->port());
  const auto res = c.request(http::verb::get, "/metrics");
  BOOST_TEST(res.result_int() == 200);
  BOOST_TEST(res[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
  BOOST_TEST(res.body() == s.registry.render());
  BOOST_TEST(res.body().find("esd_events_total{outcome=\"ok\"} 5\n") != std::string::npos);
  // Prometheus may add parameters to the scrape URL.
  BOOST_TEST(c.request(http::verb::get, "/metrics?format=prometheus").result_int() == 200);
}

BOOST_AUTO_TEST_CASE(healthz_and_readyz) {
  running_server s;
  client c(s.server->port());
  auto res = c.request(http::verb::get, "/healthz");
  BOOST_TEST(res.result_int() == 200);
  BOOST_TEST(res.body() == "ok\n");

  res = c.request(http::verb::get, "/readyz");
  BOOST_TEST(res.result_int() == 200);
  BOOST_TEST(res.body() == "ready\n");

  s.ready = false;
  res = c.request(http::verb::get, "/readyz");
  BOOST_TEST(res.result_int() == 503);
  BOOST_TEST(res.body() == "database unreachable\n");

  s.ready = true;
  BOOST_TEST(c.request(http::verb::get, "/readyz").result_int() == 200);
}

BOOST_AUTO_TEST_CASE(unknown_path_404_and_other_methods_405) {
  running_server s;
  client c(s.server->port());
  BOOST_TEST(c.request(http::verb::get, "/nope").result_int() == 404);
  const auto res = c.request(http::verb::post, "/metrics", true, "x=1");
  BOOST_TEST(res.result_int() == 405);
  BOOST_TEST(res[http::field::allow] == "GET");
  BOOST_TEST(c.request(http::verb::delete_, "/healthz").result_int() == 405);
  BOOST_TEST(c.request(http::verb::get, "/healthz").result_int() == 200);  // still the same connection
}

BOOST_AUTO_TEST_CASE(keep_alive_serves_two_requests_on_one_connection) {
  running_server s;
  client c(s.server->port());
  const auto first = c.request(http::verb::get, "/healthz");
  BOOST_TEST(first.result_int() == 200);
  BOOST_TEST(first.keep_alive());
  const auto second = c.request(http::verb::get, "/metrics", false);
  BOOST_TEST(second.result_int() == 200);
  BOOST_TEST(!second.keep_alive());
  BOOST_TEST(c.closed_by_server());  // Connection: close is honoured
}

BOOST_AUTO_TEST_CASE(garbage_gets_400_and_the_server_keeps_serving) {
  running_server s;
  {
    client c(s.server->port());
    const std::string garbage = "\x16\x03\x01 this is not HTTP at all\r\n\r\n";
    asio::write(c.socket, asio::buffer(garbage));
    const auto res = c.read();
    BOOST_TEST(res.result_int() == 400);
    BOOST_TEST(c.closed_by_server());
  }
  {
    client c(s.server->port());  // a client that connects and leaves without a word
  }
  {
    client c(s.server->port());
    asio::write(c.socket,
                asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")));
    BOOST_TEST(c.read().result_int() == 400);
  }
  client c(s.server->port());
  BOOST_TEST(c.request(http::verb::get, "/healthz").result_int() == 200);
}

BOOST_AUTO_TEST_CASE(oversized_body_gets_413) {
  running_server s;
  client c(s.server->port());
  const auto res = c.request(http::verb::get, "/metrics", true, std::string(9000, 'x'));
  BOOST_TEST(res.result_int() == 413);
  BOOST_TEST(c.closed_by_server());
  client again(s.server->port());
  BOOST_TEST(again.request(http::verb::get, "/metrics", true, std::string(100, 'x')).result_int() == 200);
}

BOOST_AUTO_TEST_CASE(healthz_answers_with_a_thousand_idle_connections_open) {
  allow_open_files(4096);
  running_server s;
  asio::io_context ioc;
  auto idle = idle_connections(ioc, s.server->port(), 1000);
  for (int probe = 0; probe < 3; ++probe) {
    client c(s.server->port());
    const auto res = c.request(http::verb::get, "/healthz");
    BOOST_TEST(res.result_int() == 200);
    BOOST_TEST(c.request(http::verb::get, "/metrics").result_int() == 200);  // and keeps its connection
  }
  // The longest idle made room; the newest are still open.
  BOOST_TEST(closed_by_server(idle.front()));
}

BOOST_AUTO_TEST_CASE(at_the_cap_the_longest_idle_connection_makes_room) {
  running_server s;
  asio::io_context ioc;
  auto idle = idle_connections(ioc, s.server->port(), 128);
  client busy(s.server->port());  // the 129th: the first idle one is closed for it
  BOOST_TEST(busy.request(http::verb::get, "/healthz").result_int() == 200);
  BOOST_TEST(closed_by_server(idle[0]));
  // A connection that has just been served is idle again, and newer than the rest: not next in line.
  client next(s.server->port());
  BOOST_TEST(next.request(http::verb::get, "/healthz").result_int() == 200);
  BOOST_TEST(closed_by_server(idle[1]));
  BOOST_TEST(busy.request(http::verb::get, "/healthz").result_int() == 200);
}

BOOST_AUTO_TEST_CASE(a_connection_that_sends_nothing_is_closed_after_the_idle_timeout) {
  running_server s;
  asio::io_context ioc;
  auto idle = idle_connections(ioc, s.server->port(), 1);
  const auto start = std::chrono::steady_clock::now();
  BOOST_TEST(closed_by_server(idle[0]));
  const auto waited = std::chrono::steady_clock::now() - start;
  BOOST_TEST((waited >= std::chrono::seconds(4) && waited < std::chrono::seconds(9)));  // not the 10 s per request
}

BOOST_AUTO_TEST_CASE(stop_closes_open_connections_and_the_listener) {
  running_server s;
  const unsigned short port = s.server->port();
  client c(port);
  BOOST_TEST(c.request(http::verb::get, "/healthz").result_int() == 200);
  s.stop();
  BOOST_TEST(c.closed_by_server());
  s.loop.join();  // every coroutine has ended
  asio::io_context ioc;
  tcp::socket late(ioc);
  boost::system::error_code ec;
  late.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  BOOST_TEST(ec == asio::error::connection_refused);
}

BOOST_AUTO_TEST_CASE(listen_addresses) {
  asio::io_context ioc;
  metrics m;
  const auto ready = [] { return esd::ops::health_check{true, ""}; };
  {
    esd::ops::metrics_server any(ioc.get_executor(), ":0", m, ready);
    BOOST_TEST(any.port() != 0);
  }
  try {
    esd::ops::metrics_server v6(ioc.get_executor(), "[::1]:0", m, ready);
    BOOST_TEST(v6.port() != 0);
  } catch (const std::runtime_error& e) {
    BOOST_TEST_MESSAGE("no IPv6 loopback here: " << e.what());
  }
  for (const std::string bad : {"127.0.0.1", "127.0.0.1:99999", "127.0.0.1:x", "::1:9187", "example.org:9187",
                                "[::1]9187", "192.0.2.1:0"}) {
    BOOST_CHECK_EXCEPTION(
        esd::ops::metrics_server(ioc.get_executor(), bad, m, ready), std::runtime_error,
        [&](const std::runtime_error& e) { return std::string(e.what()).find(bad) != std::string::npos; });
  }
  // A port already taken names the address too.
  esd::ops::metrics_server first(ioc.get_executor(), "127.0.0.1:0", m, ready);
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());
  BOOST_CHECK_EXCEPTION(
      esd::ops::metrics_server(ioc.get_executor(), taken, m, ready), std::runtime_error,
      [&](const std::runtime_error& e) { return std::string(e.what()).find(taken) != std::string::npos; });
}

BOOST_AUTO_TEST_SUITE_END()
