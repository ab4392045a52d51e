#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

// The Prometheus registry's exact text output, and the /metrics, /healthz, /readyz endpoint over real
// sockets: the server runs on its own io_context thread, the test drives it with a blocking Beast client.

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ops/metrics.hpp"
#include "ops/metrics_server.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using esd::ops::metrics;

auto names(const std::string& fragment) {
  return [fragment](const std::logic_error& e) {
    return std::string(e.what()).find(fragment) != std::string::npos;
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(registry)

BOOST_AUTO_TEST_CASE(renders_counter_gauge_and_histogram_exactly) {
  metrics m;
  m.describe_histogram("esd_sync_seconds", "Time per sync.", {1, 0.125, 0.5});
  m.describe_counter("esd_events_total", "Events processed.");
  m.describe_gauge("esd_queue_depth", "Rows waiting.");

  m.inc("esd_events_total", {{"outcome", "ok"}}, 3);
  m.inc("esd_events_total", {{"outcome", "failed"}});
  m.inc("esd_events_total", {{"outcome", "ok"}});
  m.set("esd_queue_depth", 7.25);
  for (const double v : {0.0625, 0.125, 0.75, 3.0}) m.observe("esd_sync_seconds", v);

  BOOST_TEST(m.render() ==
             "# HELP esd_events_total Events processed.\n"
             "# TYPE esd_events_total counter\n"
             "esd_events_total{outcome=\"failed\"} 1\n"
             "esd_events_total{outcome=\"ok\"} 4\n"
             "# HELP esd_queue_depth Rows waiting.\n"
             "# TYPE esd_queue_depth gauge\n"
             "esd_queue_depth 7.25\n"
             "# HELP esd_sync_seconds Time per sync.\n"
             "# TYPE esd_sync_seconds histogram\n"
             "esd_sync_seconds_bucket{le=\"0.125\"} 2\n"  // an upper bound is inclusive
             "esd_sync_seconds_bucket{le=\"0.5\"} 2\n"    // cumulative: nothing new, still 2
             "esd_sync_seconds_bucket{le=\"1\"} 3\n"
             "esd_sync_seconds_bucket{le=\"+Inf\"} 4\n"
             "esd_sync_seconds_sum 3.9375\n"
             "esd_sync_seconds_count 4\n");
}

BOOST_AUTO_TEST_CASE(labelled_histogram_puts_le_last_and_series_sort_by_labels) {
  metrics m;
  m.describe_histogram("esd_store_call_seconds", "Store call latency.", {0.5});
  m.observe("esd_store_call_seconds", 0.25, {{"call", "query"}});
  m.observe("esd_store_call_seconds", 2, {{"call", "collections"}});
  BOOST_TEST(m.render() ==
             "# HELP esd_store_call_seconds Store call latency.\n"
             "# TYPE esd_store_call_seconds histogram\n"
             "esd_store_call_seconds_bucket{call=\"collections\",le=\"0.5\"} 0\n"
             "esd_store_call_seconds_bucket{call=\"collections\",le=\"+Inf\"} 1\n"
             "esd_store_call_seconds_sum{call=\"collections\"} 2\n"
             "esd_store_call_seconds_count{call=\"collections\"} 1\n"
             "esd_store_call_seconds_bucket{call=\"query\",le=\"0.5\"} 1\n"
             "esd_store_call_seconds_bucket{call=\"query\",le=\"+Inf\"} 1\n"
             "esd_store_call_seconds_sum{call=\"query\"} 0.25\n"
             "esd_store_call_seconds_count{call=\"query\"} 1\n");
}

BOOST_AUTO_TEST_CASE(escapes_label_values_and_help) {
  metrics m;
  m.describe_counter("esd_errors_total", "Errors by \"reason\", with a \\ and a\nnewline.");
  m.inc("esd_errors_total", {{"reason", "a\"b\\c\nd"}});
  BOOST_TEST(m.render() ==
             "# HELP esd_errors_total Errors by \"reason\", with a \\\\ and a\\nnewline.\n"
             "# TYPE esd_errors_total counter\n"
             "esd_errors_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n");
}

BOOST_AUTO_TEST_CASE(label_order_does_not_make_a_new_series) {
  metrics m;
  m.describe_counter("esd_calls_total", "Calls.");
  m.inc("esd_calls_total", {{"z", "1"}, {"a", "2"}});
  m.inc("esd_calls_total", {{"a", "2"}, {"z", "1"}});
  BOOST_TEST(m.render() ==
             "# HELP esd_calls_total Calls.\n"
             "# TYPE esd_calls_total counter\n"
             "esd_calls_total{a=\"2\",z=\"1\"} 2\n");
}

BOOST_AUTO_TEST_CASE(numbers_render_as_prometheus_reads_them) {
  metrics m;
  m.describe_gauge("g", "g");
  const auto value_of = [&](double v) {
    m.set("g", v);
    const std::string text = m.render();
    const auto at = text.rfind(' ');
    return text.substr(at + 1, text.size() - at - 2);
  };
  BOOST_TEST(value_of(0) == "0");
  BOOST_TEST(value_of(-3) == "-3");
  BOOST_TEST(value_of(1234567890) == "1234567890");
  BOOST_TEST(value_of(0.1) == "0.1");
  BOOST_TEST(value_of(1e20) == "1e+20");
  BOOST_TEST(value_of(2.5e-7) == "2.5e-07");
  BOOST_TEST(value_of(std::numeric_limits<double>::infinity()) == "+Inf");
  BOOST_TEST(value_of(-std::numeric_limits<double>::infinity()) == "-Inf");
  BOOST_TEST(value_of(std::nan("")) == "NaN");
}

BOOST_AUTO_TEST_CASE(undescribed_name_is_a_logic_error_naming_it) {
  metrics m;
  BOOST_CHECK_EXCEPTION(m.inc("esd_typo_total"), std::logic_error, names("esd_typo_total"));
  BOOST_CHECK_EXCEPTION(m.set("esd_typo_gauge", 1), std::logic_error, names("esd_typo_gauge"));
  BOOST_CHECK_EXCEPTION(m.observe("esd_typo_seconds", 1), std::logic_error, names("esd_typo_seconds"));
}

BOOST_AUTO_TEST_CASE(misuse_is_a_logic_error) {
  metrics m;
  m.describe_counter("esd_c_total", "c");
  m.describe_counter("esd_c_total", "c again");  // same name, same type: fine
  m.describe_gauge("esd_g", "g");
  m.describe_histogram("esd_h", "h", {1});
  BOOST_CHECK_EXCEPTION(m.describe_gauge("esd_c_total", "c"), std::logic_error, names("esd_c_total"));
  BOOST_CHECK_EXCEPTION(m.describe_histogram("esd_h", "h", {2}), std::logic_error, names("esd_h"));
  BOOST_CHECK_EXCEPTION(m.describe_counter("bad name", "x"), std::logic_error, names("bad name"));
  BOOST_CHECK_EXCEPTION(m.set("esd_c_total", 1), std::logic_error, names("esd_c_total"));
  BOOST_CHECK_EXCEPTION(m.inc("esd_c_total", {}, -1), std::logic_error, names("esd_c_total"));
  BOOST_CHECK_EXCEPTION(m.observe("esd_g", 1), std::logic_error, names("esd_g"));
  BOOST_CHECK_EXCEPTION(m.observe("esd_h", 1, {{"le", "x"}}), std::logic_error, names("le"));
  BOOST_CHECK_EXCEPTION(m.inc("esd_c_total", {{"a", "1"}, {"a", "2"}}), std::logic_error, names("a"));
  m.inc("esd_g", {}, -2);  // gauges go both ways
  BOOST_TEST(m.render().find("esd_g -2\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(collector_runs_on_every_render) {
  metrics m;
  m.describe_gauge("esd_keys_expiring", "Store ID keys expiring within a day.");
  int calls = 0;
  m.set_collector([&calls](metrics& r) {
    ++calls;
    r.set("esd_keys_expiring", calls * 10);
  });
  BOOST_TEST(m.render().find("esd_keys_expiring 10\n") != std::string::npos);
  BOOST_TEST(m.render().find("esd_keys_expiring 20\n") != std::string::npos);
  BOOST_TEST(calls == 2);
}

BOOST_AUTO_TEST_CASE(updates_from_several_threads_all_count) {
  metrics m;
  m.describe_counter("esd_db_writes_total", "w");
  m.describe_histogram("esd_db_seconds", "s", {0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < 5000; ++i) {
        m.inc("esd_db_writes_total");
        m.observe("esd_db_seconds", 0.25);
      }
    });
  }
  for (int i = 0; i < 50; ++i) (void)m.render();
  for (auto& t : threads) t.join();
  const std::string text = m.render();
  BOOST_TEST(text.find("esd_db_writes_total 20000\n") != std::string::npos);
  BOOST_TEST(text.find("esd_db_seconds_count 20000\n") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

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

  // True when the server has closed the connection (EOF or reset, nothing more to read).
  bool closed_by_server() {
    char byte;
    boost::system::error_code ec;
    socket.read_some(asio::buffer(&byte, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }
};

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

BOOST_AUTO_TEST_CASE(at_most_64_connections) {
  running_server s;
  std::vector<std::unique_ptr<client>> clients;
  for (int i = 0; i < 64; ++i) clients.push_back(std::make_unique<client>(s.server->port()));
  // Accepted in order, so the server has taken all 64 before this one.
  client extra(s.server->port());
  BOOST_TEST(extra.closed_by_server());
  BOOST_TEST(clients.front()->request(http::verb::get, "/healthz").result_int() == 200);

  // One leaves; its slot frees once the server has seen it go.
  clients.back()->socket.close();
  clients.pop_back();
  bool served = false;
  for (int attempt = 0; attempt < 100 && !served; ++attempt) {
    client next(s.server->port());
    boost::system::error_code ec;
    http::request<http::string_body> req{http::verb::get, "/healthz", 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(next.socket, req, ec);
    http::response<http::string_body> res;
    if (!ec) http::read(next.socket, next.buffer, res, ec);
    served = !ec && res.result_int() == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  BOOST_TEST(served);
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
