#define BOOST_TEST_MODULE https_client
#include <boost/test/unit_test.hpp>

// https_client against an in-process TLS server (Beast, coroutines, 127.0.0.1, port 0) whose certificate is
// generated here: the real TLS stack, real verification, real sockets.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>

#include "net/https_client.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using esd::net::client_options;
using esd::net::http_request;
using esd::net::http_response;
using esd::net::https_client;
using namespace std::chrono_literals;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// ---- a self-signed certificate made with OpenSSL ----

struct test_cert {
  std::string cert_pem;
  std::string key_pem;
};

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

test_cert make_cert(const char* subject_alt_names) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> x509(X509_new(), X509_free);
  BOOST_REQUIRE(key && x509);
  X509* x = x509.get();
  static std::atomic<long> serial{1};
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("https_client test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_subject_alt_name, subject_alt_names},
        std::pair{NID_basic_constraints, "critical,CA:FALSE"}, std::pair{NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    BOOST_REQUIRE(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  BOOST_REQUIRE(X509_sign(x, key.get(), EVP_sha256()) > 0);

  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), BIO_free);
  BOOST_REQUIRE(PEM_write_bio_X509(cert_bio.get(), x) == 1);
  BOOST_REQUIRE(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ==
                1);
  return {bio_string(cert_bio.get()), bio_string(key_bio.get())};
}

struct temp_pem_file {
  explicit temp_pem_file(const std::string& pem) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("https_client_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".pem");
    std::ofstream(path) << pem;
  }
  ~temp_pem_file() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  std::filesystem::path path;
};

// ---- the server ----
//
// Routes: /status/NNN (echoes the body and what it saw of the request), /hang (never answers),
// /slow (answers after 50 ms), /large/N (N body bytes), /conn-close (Connection: close),
// /close-after (answers keep-alive, then hangs up without close_notify), /close-after-notify (the same,
// with a TLS close_notify), /truncated (promises 100 body bytes, sends 10, hangs up), /pieces (a raw
// answer written in three pieces 20 ms apart, the header cut in two), /chunked (chunked, in two pieces),
// /until-close (no length: the body ends when the server closes, with close_notify), /extra-bytes (an
// answer followed by stray bytes in the same write).

using server_stream = asio::ssl::stream<beast::tcp_stream>;

class test_server {
 public:
  test_server(asio::io_context& ioc, const test_cert& cert)
      : tls_(asio::ssl::context::tls_server),
        acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}),
        never_(ioc) {
    tls_.use_certificate_chain(asio::buffer(cert.cert_pem));
    tls_.use_private_key(asio::buffer(cert.key_pem), asio::ssl::context::pem);
    never_.expires_at(asio::steady_timer::time_point::max());
    asio::co_spawn(ioc, accept_loop(), rethrow);
  }

  std::string url(const std::string& target, const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(port()) + target;
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void stop() {
    error_code ec;
    acceptor_.close(ec);
    never_.cancel();
    for (server_stream* s : streams_) beast::get_lowest_layer(*s).close();
  }

  int accepted = 0;
  int active = 0;
  int peak_active = 0;
  int handshaking = 0;  // accepted, TLS handshake not finished
  int peak_handshaking = 0;
  std::chrono::milliseconds handshake_delay{0};  // a slow server: waits this long before its TLS handshake

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      ++accepted;
      asio::co_spawn(acceptor_.get_executor(), session(std::move(socket)), rethrow);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    server_stream stream(std::move(socket), tls_);
    struct registration {
      test_server& s;
      server_stream* stream;
      registration(test_server& s, server_stream* st) : s(s), stream(st) {
        s.streams_.insert(st);
        s.peak_active = std::max(s.peak_active, ++s.active);
      }
      ~registration() {
        s.streams_.erase(stream);
        --s.active;
      }
    } reg(*this, &stream);

    beast::get_lowest_layer(stream).expires_after(5s);
    peak_handshaking = std::max(peak_handshaking, ++handshaking);
    if (handshake_delay.count() > 0) {
      asio::steady_timer slow(stream.get_executor(), handshake_delay);
      co_await slow.async_wait(use_tuple);
    }
    auto [handshake_ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
    --handshaking;
    if (handshake_ec) co_return;
    beast::get_lowest_layer(stream).expires_never();
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [read_ec, n] = co_await http::async_read(stream, buffer, req, use_tuple);
      if (read_ec) co_return;
      if (!co_await respond(stream, req)) co_return;
    }
  }

  // Writes the pieces 20 ms apart; false when the client went away.
  static asio::awaitable<bool> write_pieces(server_stream& stream, const std::vector<std::string>& pieces) {
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      if (i > 0) {
        asio::steady_timer t(stream.get_executor(), 20ms);
        co_await t.async_wait(use_tuple);
      }
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(pieces[i]), use_tuple);
      if (ec) co_return false;
    }
    co_return true;
  }

  // Returns whether to keep the connection open for another request.
  asio::awaitable<bool> respond(server_stream& stream, const http::request<http::string_body>& req) {
    std::string path(req.target());
    auto& tcp_layer = beast::get_lowest_layer(stream);
    if (path == "/hang") {
      co_await never_.async_wait(use_tuple);
      co_return false;
    }
    if (path == "/truncated") {
      std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
      co_await asio::async_write(stream, asio::buffer(raw), use_tuple);
      tcp_layer.close();
      co_return false;
    }
    // Raw answers, in pieces. The vectors are named locals (GCC 12).
    if (path == "/pieces") {
      const std::vector<std::string> pieces{"HTTP/1.1 200 OK\r\nContent-Le", "ngth: 11\r\nX-Piece: yes\r\n\r\nhello",
                                            " world"};
      co_return co_await write_pieces(stream, pieces);
    }
    if (path == "/chunked") {
      const std::vector<std::string> pieces{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                                            "6\r\n world\r\n0\r\n\r\n"};
      co_return co_await write_pieces(stream, pieces);
    }
    if (path == "/until-close") {
      const std::vector<std::string> pieces{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until ", "the close"};
      co_await write_pieces(stream, pieces);
      tcp_layer.expires_after(100ms);
      co_await stream.async_shutdown(use_tuple);
      tcp_layer.close();
      co_return false;
    }
    if (path == "/early-hints" || path == "/early-hints-together") {
      const std::string hint = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
      const std::string final_answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal";
      const std::vector<std::string> pieces = path == "/early-hints" ? std::vector<std::string>{hint, final_answer}
                                                                     : std::vector<std::string>{hint + final_answer};
      co_return co_await write_pieces(stream, pieces);
    }
    if (path == "/extra-bytes") {
      const std::vector<std::string> pieces{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"};
      co_return co_await write_pieces(stream, pieces);
    }
    http::response<http::string_body> res{http::status::ok, 11};
    res.keep_alive(req.keep_alive());
    if (path.starts_with("/status/")) {
      res.result(static_cast<unsigned>(std::stoi(path.substr(8))));
      if (res.result_int() == 429) res.set(http::field::retry_after, "7");
      res.set("X-Seen-Method", req.method_string());
      res.set("X-Seen-Content-Type", req[http::field::content_type]);
      res.set("X-Seen-User-Agent", req[http::field::user_agent]);
      res.set("X-Seen-Host", req[http::field::host]);
      res.set("X-Seen-Authorization", req.count(http::field::authorization) ? req[http::field::authorization] : "absent");
      res.insert("X-Dup", "a");
      res.insert("X-Dup", "b");
      res.body() = req.body();
    } else if (path.starts_with("/large/")) {
      res.body() = std::string(std::stoul(path.substr(7)), 'x');
    } else if (path == "/slow") {
      asio::steady_timer t(stream.get_executor(), 50ms);
      co_await t.async_wait(use_tuple);
    } else if (path == "/conn-close") {
      res.keep_alive(false);
    }
    res.prepare_payload();
    auto [write_ec, n] = co_await http::async_write(stream, res, use_tuple);
    if (write_ec) co_return false;
    if (path == "/close-after-notify" || !res.keep_alive()) {
      tcp_layer.expires_after(100ms);  // sends close_notify, then gives up waiting for the client's
      co_await stream.async_shutdown(use_tuple);
    }
    if (path.starts_with("/close-after") || !res.keep_alive()) {
      tcp_layer.close();
      co_return false;
    }
    co_return true;
  }

  asio::ssl::context tls_;
  tcp::acceptor acceptor_;
  asio::steady_timer never_;
  std::set<server_stream*> streams_;
};

// ---- fixture ----

struct fixture {
  fixture() {
    options.request_timeout = 2s;
    options.connect_timeout = 2s;
  }
  ~fixture() {
    server.stop();
    ioc.restart();
    ioc.run_for(2s);  // let sessions end before the server object goes
  }

  // Runs one test body to completion (or fails after 10 s).
  void run(asio::awaitable<void> body) {
    bool done = false;
    asio::co_spawn(ioc, std::move(body), [&](std::exception_ptr e) {
      done = true;
      server.stop();
      rethrow(e);
    });
    ioc.run_for(10s);
    BOOST_REQUIRE_MESSAGE(done, "test body did not finish within 10 s");
  }

  asio::io_context ioc;
  test_cert cert = make_cert("DNS:localhost,IP:127.0.0.1");
  temp_pem_file ca{cert.cert_pem};
  asio::ssl::context tls = esd::net::make_client_tls_context(ca.path.string());
  test_server server{ioc, cert};
  client_options options;
};

http_request get(std::string url) {
  http_request r;
  r.method = "GET";
  r.url = std::move(url);
  return r;
}

// Sends `n` requests to /slow at once and checks that every one got a 200.
asio::awaitable<void> all_slow_requests_succeed(fixture& f, https_client& client, std::size_t n) {
  std::vector<std::pair<error_code, http_response>> results(n);
  std::size_t remaining = n;
  asio::steady_timer all_done(f.ioc, asio::steady_timer::time_point::max());
  for (std::size_t i = 0; i < results.size(); ++i) {
    asio::co_spawn(f.ioc, client.send(get(f.server.url("/slow"))),
                   [&, i](std::exception_ptr e, std::pair<error_code, http_response> r) {
                     rethrow(e);
                     results[i] = std::move(r);
                     if (--remaining == 0) all_done.cancel();
                   });
  }
  co_await all_done.async_wait(use_tuple);
  for (const auto& [ec, res] : results) {
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.status == 200u);
  }
}

// Event-loop turns, counted every 5 ms until `counting` is cleared. Shared: it outlives the test body.
struct tick_counter {
  explicit tick_counter(asio::io_context& ioc) : timer(ioc) {}
  asio::steady_timer timer;
  int ticks = 0;
  bool counting = true;
};

asio::awaitable<void> count_ticks(std::shared_ptr<tick_counter> t) {
  while (t->counting) {
    t->timer.expires_after(5ms);
    co_await t->timer.async_wait(use_tuple);
    ++t->ticks;
  }
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_tuple);
}

}  // namespace

// ---- URL and TLS context ----

BOOST_AUTO_TEST_CASE(parse_https_url_accepts_only_plain_https_urls) {
  using esd::net::parse_https_url;
  auto u = parse_https_url("https://Collections.MP.Microsoft.com/v8.0/collections/query?x=1");
  BOOST_REQUIRE(u);
  BOOST_TEST(u->host == "collections.mp.microsoft.com");
  BOOST_TEST(u->port == 443);
  BOOST_TEST(u->target == "/v8.0/collections/query?x=1");

  u = parse_https_url("HTTPS://localhost:8443");
  BOOST_REQUIRE(u);
  BOOST_TEST(u->port == 8443);
  BOOST_TEST(u->target == "/");

  u = parse_https_url("https://[::1]:9000/a");
  BOOST_REQUIRE(u);
  BOOST_TEST(u->host == "::1");
  BOOST_TEST(u->port == 9000);
  BOOST_TEST(u->target == "/a");

  u = parse_https_url("https://example.com?q=1");
  BOOST_REQUIRE(u);
  BOOST_TEST(u->target == "/?q=1");

  for (const char* bad :
       {"http://example.com/", "ftp://example.com", "https://", "https:///path",
        "https://user:pw@example.com/", "https://example.com/#frag", "https://example.com:0/",
        "https://example.com:65536/", "https://example.com:/", "https://example.com:12a/", "https://[::1/",
        "https://[nonsense]/", "https://exa mple.com/", "https://example.com/a b", "example.com"}) {
    BOOST_TEST(!parse_https_url(bad), bad);
  }
}

BOOST_AUTO_TEST_CASE(missing_ca_file_is_reported_by_name) {
  try {
    esd::net::make_client_tls_context("/nonexistent/ca-bundle.pem");
    BOOST_FAIL("expected an exception");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("/nonexistent/ca-bundle.pem") != std::string::npos);
  }
}

// ---- requests ----

BOOST_FIXTURE_TEST_CASE(round_trip_with_status_body_and_headers, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    https_client client(f.ioc.get_executor(), f.tls, f.options);
    http_request post;
    post.url = f.server.url("/status/201", "LocalHost");
    post.bearer_token = std::make_shared<const std::string>("service-token");
    post.body = R"({"beneficiaries":[]})";
    auto [ec, res] = co_await client.send(post);
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.status == 201);
    BOOST_TEST(res.body == post.body);
    BOOST_TEST(res.headers["x-seen-method"] == "POST");
    BOOST_TEST(res.headers["x-seen-content-type"] == "application/json");
    BOOST_TEST(res.headers["x-seen-user-agent"] == "entitlement-syncd");
    BOOST_TEST(res.headers["x-seen-authorization"] == "Bearer service-token");
    BOOST_TEST(res.headers["x-seen-host"] == "localhost:" + std::to_string(f.server.port()));
    BOOST_TEST(res.headers["x-dup"] == "a, b");
    for (const auto& [name, value] : res.headers) {
      BOOST_TEST(std::none_of(name.begin(), name.end(), [](unsigned char c) { return std::isupper(c); }),
                 name);
    }

    http_request plain = post;
    plain.headers.emplace_back("content-type", "text/plain");
    std::tie(ec, res) = co_await client.send(plain);
    BOOST_TEST(!ec);
    BOOST_TEST(res.headers["x-seen-content-type"] == "text/plain");

    std::tie(ec, res) = co_await client.send(get(f.server.url("/status/429")));
    BOOST_TEST(!ec);
    BOOST_TEST(res.status == 429);
    BOOST_TEST(res.headers["retry-after"] == "7");
    BOOST_TEST(res.headers["x-seen-method"] == "GET");
    BOOST_TEST(res.headers["x-seen-content-type"] == "");
    BOOST_TEST(res.body.empty());
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(sequential_requests_reuse_one_connection, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    https_client client(f.ioc.get_executor(), f.tls, f.options);
    for (int i = 0; i < 10; ++i) {
      auto [ec, res] = co_await client.send(get(f.server.url("/status/200")));
      BOOST_TEST(!ec);
      BOOST_TEST(res.status == 200);
    }
    BOOST_TEST(client.stats().requests == 10u);
    BOOST_TEST(client.stats().tls_handshakes == 1u);
    BOOST_TEST(client.stats().reused == 9u);
    BOOST_TEST(f.server.accepted == 1);
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(connections_are_not_reused_after_close_idle_timeout_or_connection_close, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    {
      https_client client(f.ioc.get_executor(), f.tls, f.options);
      co_await client.send(get(f.server.url("/conn-close")));
      auto [ec, res] = co_await client.send(get(f.server.url("/status/200")));
      BOOST_TEST(!ec);
      co_await client.send(get(f.server.url("/status/200")));
      client.close_idle();
      co_await client.send(get(f.server.url("/status/200")));
      BOOST_TEST(client.stats().tls_handshakes == 3u);
      BOOST_TEST(client.stats().reused == 1u);
      BOOST_TEST(client.stats().stale_retries == 0u);
    }
    auto options = f.options;
    options.idle_timeout = 0s;
    https_client client(f.ioc.get_executor(), f.tls, options);
    co_await client.send(get(f.server.url("/status/200")));
    auto [ec, res] = co_await client.send(get(f.server.url("/status/200")));
    BOOST_TEST(!ec);
    BOOST_TEST(client.stats().tls_handshakes == 2u);
    BOOST_TEST(client.stats().reused == 0u);
  }(*this));
}

// A new connection to a host resumes the TLS session of the last one (no certificate sent or checked
// again); a session is never offered to another host name, even one served by the same server.
BOOST_FIXTURE_TEST_CASE(new_connections_resume_the_hosts_last_session, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    https_client client(f.ioc.get_executor(), f.tls, f.options);
    auto [ec, res] = co_await client.send(get(f.server.url("/conn-close", "localhost")));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(client.stats().tls_handshakes == 1u);
    BOOST_TEST(client.stats().tls_resumed == 0u);

    std::tie(ec, res) = co_await client.send(get(f.server.url("/conn-close", "localhost")));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(client.stats().tls_handshakes == 2u);
    BOOST_TEST(client.stats().tls_resumed == 1u);

    std::tie(ec, res) = co_await client.send(get(f.server.url("/status/200", "127.0.0.1")));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.status == 200u);
    BOOST_TEST(client.stats().tls_handshakes == 3u);
    BOOST_TEST(client.stats().tls_resumed == 1u);  // another host name: a full handshake
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(untrusted_certificate_is_refused, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    auto system_trust_only = esd::net::make_client_tls_context("");
    https_client client(f.ioc.get_executor(), system_trust_only, f.options);
    auto [ec, res] = co_await client.send(get(f.server.url("/status/200", "localhost")));
    BOOST_TEST(ec.failed());
    BOOST_TEST((ec.category() == asio::error::get_ssl_category()), ec.message());
    BOOST_TEST(res.status == 0u);
    BOOST_TEST(client.stats().tls_handshakes == 0u);
  }(*this));
}

BOOST_AUTO_TEST_CASE(certificate_for_another_host_is_refused) {
  asio::io_context ioc;
  auto cert = make_cert("DNS:other.example");
  temp_pem_file ca(cert.cert_pem);
  auto tls = esd::net::make_client_tls_context(ca.path.string());
  test_server server(ioc, cert);
  int finished = 0;
  asio::co_spawn(
      ioc,
      [](test_server& server, asio::ssl::context& tls, int& finished) -> asio::awaitable<void> {
        // Named locals (GCC 12).
        auto ex = co_await asio::this_coro::executor;
        client_options options;
        https_client client(ex, tls, options);
        for (const char* host : {"localhost", "127.0.0.1"}) {
          auto [ec, res] = co_await client.send(get(server.url("/status/200", host)));
          BOOST_TEST((ec.category() == asio::error::get_ssl_category()), host << ": " << ec.message());
          BOOST_TEST(res.status == 0u);
          ++finished;
        }
        server.stop();
      }(server, tls, finished),
      rethrow);
  ioc.run_for(10s);
  BOOST_TEST(finished == 2);
}

BOOST_FIXTURE_TEST_CASE(request_timeout_against_a_silent_server, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    auto options = f.options;
    options.request_timeout = 300ms;
    https_client client(f.ioc.get_executor(), f.tls, options);
    auto start = std::chrono::steady_clock::now();
    auto [ec, res] = co_await client.send(get(f.server.url("/hang")));
    auto elapsed = std::chrono::steady_clock::now() - start;
    BOOST_TEST(ec == asio::error::timed_out, ec.message());
    BOOST_TEST(res.status == 0u);
    BOOST_TEST((elapsed >= 250ms && elapsed < 1500ms));
  }(*this));
}

// Waiting for a handshake turn is the client's own queue: it counts against request_timeout, not
// connect_timeout, so a slow server does not make the last of many new connections time out unheard.
BOOST_FIXTURE_TEST_CASE(waiting_for_a_handshake_turn_is_not_a_connect_timeout, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    f.server.handshake_delay = 100ms;
    auto options = f.options;
    options.max_connections_per_host = 6;
    options.max_concurrent_handshakes = 1;
    options.connect_timeout = 250ms;  // each handshake fits; six in a row (600 ms and more) would not
    https_client client(f.ioc.get_executor(), f.tls, options);
    co_await all_slow_requests_succeed(f, client, 6);
    BOOST_TEST(client.stats().tls_handshakes == 6u);
    BOOST_TEST(client.stats().peak_handshaking == 1u);
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(connect_timeout_covers_the_tls_handshake, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    // The kernel completes the TCP handshake for a listening socket nobody accepts from; TLS never starts.
    tcp::acceptor silent(f.ioc, {asio::ip::make_address("127.0.0.1"), 0});
    auto options = f.options;
    options.connect_timeout = 300ms;
    https_client client(f.ioc.get_executor(), f.tls, options);
    auto start = std::chrono::steady_clock::now();
    auto [ec, res] = co_await client.send(
        get("https://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/"));
    auto elapsed = std::chrono::steady_clock::now() - start;
    BOOST_TEST(ec == asio::error::timed_out, ec.message());
    BOOST_TEST((elapsed >= 250ms && elapsed < 1500ms));
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(connection_closed_by_server_while_idle_is_retried_once, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    https_client client(f.ioc.get_executor(), f.tls, f.options);
    // Without close_notify (the peer just hung up), then with it.
    for (const char* route : {"/close-after", "/close-after-notify"}) {
      auto [ec, res] = co_await client.send(get(f.server.url(route)));
      BOOST_TEST(!ec);
      co_await sleep_for(100ms);  // the server has closed the pooled connection by now
      std::tie(ec, res) = co_await client.send(get(f.server.url("/status/200")));
      BOOST_TEST(!ec, route << ": " << ec.message());
      BOOST_TEST(res.status == 200u);
    }
    BOOST_TEST(client.stats().stale_retries == 2u);
    BOOST_TEST(client.stats().tls_handshakes == 3u);

    // Not for requests that must not be repeated.
    co_await client.send(get(f.server.url("/close-after")));
    co_await sleep_for(100ms);
    auto once = get(f.server.url("/status/200"));
    once.retry_on_stale_connection = false;
    auto [ec, res] = co_await client.send(once);
    BOOST_TEST(ec.failed());
    BOOST_TEST(client.stats().stale_retries == 2u);
  }(*this));
}

// A TCP relay that passes what the server sends in small pieces, a few milliseconds apart, so that TLS
// records reach the client cut in parts.
class splitting_proxy {
 public:
  splitting_proxy(asio::io_context& ioc, std::uint16_t target_port)
      : acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}), target_port_(target_port) {
    asio::co_spawn(ioc, accept_loop(), rethrow);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void stop() {
    error_code ec;
    acceptor_.close(ec);
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, client] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      auto client_side = std::make_shared<tcp::socket>(std::move(client));
      auto server_side = std::make_shared<tcp::socket>(acceptor_.get_executor());
      const tcp::endpoint target(asio::ip::make_address("127.0.0.1"), target_port_);
      auto [connect_ec] = co_await server_side->async_connect(target, use_tuple);
      if (connect_ec) continue;
      asio::co_spawn(acceptor_.get_executor(), pump(client_side, server_side, 0), rethrow);
      asio::co_spawn(acceptor_.get_executor(), pump(server_side, client_side, 200), rethrow);
    }
  }
  // Copies from `from` to `to`; with `piece` > 0, in pieces of that many bytes, 2 ms apart.
  static asio::awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to,
                                    std::size_t piece) {
    std::array<char, 16 * 1024> data;
    for (;;) {
      auto [ec, n] = co_await from->async_read_some(asio::buffer(data), use_tuple);
      if (ec) break;
      for (std::size_t at = 0; at < n;) {
        const std::size_t len = piece == 0 ? n - at : std::min(piece, n - at);
        auto [write_ec, written] = co_await asio::async_write(*to, asio::buffer(data.data() + at, len), use_tuple);
        if (write_ec) co_return;
        at += len;
        if (piece > 0) {
          asio::steady_timer pause(to->get_executor(), 2ms);
          co_await pause.async_wait(use_tuple);
        }
      }
    }
    error_code ignored;
    to->shutdown(tcp::socket::shutdown_send, ignored);
  }

  tcp::acceptor acceptor_;
  std::uint16_t target_port_;
};

// TLS records that arrive in pieces: the client waits for the rest of a record instead of asking OpenSSL
// again and again (which would hold the event loop until the rest came).
BOOST_FIXTURE_TEST_CASE(tls_records_arriving_in_pieces_are_waited_for, fixture) {
  splitting_proxy proxy(ioc, server.port());
  run([&proxy](fixture& f) -> asio::awaitable<void> {
    https_client client(f.ioc.get_executor(), f.tls, f.options);
    // Counts event-loop turns while the answer trickles in: a loop that never yields would leave it at 0.
    auto ticks = std::make_shared<tick_counter>(f.ioc);
    asio::co_spawn(f.ioc, count_ticks(ticks), rethrow);
    auto [ec, res] = co_await client.send(get("https://127.0.0.1:" + std::to_string(proxy.port()) + "/large/40000"));
    ticks->counting = false;
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.body.size() == 40000u);
    BOOST_TEST(ticks->ticks > 10);  // 40 KB in 200-byte pieces 2 ms apart take about 400 ms
    proxy.stop();
  }(*this));
}

// An interim answer (103 Early Hints) is skipped: the final one is returned, and the connection reused.
BOOST_FIXTURE_TEST_CASE(interim_answers_are_skipped, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    https_client client(f.ioc.get_executor(), f.tls, f.options);
    for (const char* route : {"/early-hints", "/early-hints-together"}) {
      auto [ec, res] = co_await client.send(get(f.server.url(route)));
      BOOST_TEST(!ec, route << ": " << ec.message());
      BOOST_TEST(res.status == 200u, route);
      BOOST_TEST(res.body == "final", route);
    }
    auto [ec, res] = co_await client.send(get(f.server.url("/status/204")));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(client.stats().tls_handshakes == 1u);
  }(*this));
}

// Answers as servers send them: a header cut across packets, chunked bodies, a body ended by the close;
// the connection is reused after a complete answer, and not after one followed by stray bytes.
BOOST_FIXTURE_TEST_CASE(answers_in_pieces_chunked_and_ended_by_close, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    https_client client(f.ioc.get_executor(), f.tls, f.options);
    auto [ec, res] = co_await client.send(get(f.server.url("/pieces")));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.status == 200u);
    BOOST_TEST(res.body == "hello world");
    BOOST_TEST(res.headers["x-piece"] == "yes");

    std::tie(ec, res) = co_await client.send(get(f.server.url("/chunked")));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.body == "hello world");
    BOOST_TEST(client.stats().tls_handshakes == 1u);  // both on one connection

    std::tie(ec, res) = co_await client.send(get(f.server.url("/extra-bytes")));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.body == "ok");
    std::tie(ec, res) = co_await client.send(get(f.server.url("/status/204")));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.status == 204u);
    BOOST_TEST(client.stats().tls_handshakes == 2u);  // the stray bytes closed the first connection

    std::tie(ec, res) = co_await client.send(get(f.server.url("/until-close")));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.body == "body until the close");
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(truncated_body_is_an_error, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    https_client client(f.ioc.get_executor(), f.tls, f.options);
    auto [ec, res] = co_await client.send(get(f.server.url("/truncated")));
    BOOST_TEST(ec.failed());
    BOOST_TEST(res.status == 0u);
    BOOST_TEST(res.body.empty());
    BOOST_TEST(client.stats().stale_retries == 0u);
  }(*this));
}

// Bodies far larger than a TLS record (16 KB) and than the socket buffers, both ways: the request is
// written in many records with the socket full in between, the answer read in many.
BOOST_FIXTURE_TEST_CASE(large_bodies_cross_many_tls_records_both_ways, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    https_client client(f.ioc.get_executor(), f.tls, f.options);
    http_request post;
    post.url = f.server.url("/status/200");
    post.body.resize(1000 * 1000);  // under the test server's request limit (1 MiB)
    for (std::size_t i = 0; i < post.body.size(); ++i) post.body[i] = static_cast<char>('a' + i % 23);
    auto [ec, res] = co_await client.send(post);
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.status == 200u);
    BOOST_TEST(res.body.size() == post.body.size());
    BOOST_TEST((res.body == post.body));

    std::tie(ec, res) = co_await client.send(get(f.server.url("/large/1000001")));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(res.body.size() == 1000001u);
    BOOST_TEST(res.body.find_first_not_of('x') == std::string::npos);
    BOOST_TEST(client.stats().tls_handshakes == 1u);
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(response_above_max_response_bytes_is_refused, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    auto options = f.options;
    options.max_response_bytes = 1000;
    https_client client(f.ioc.get_executor(), f.tls, options);
    auto [ec, res] = co_await client.send(get(f.server.url("/large/1000")));
    BOOST_TEST(!ec);
    BOOST_TEST(res.body.size() == 1000u);
    std::tie(ec, res) = co_await client.send(get(f.server.url("/large/1001")));
    BOOST_TEST(ec == asio::error::message_size, ec.message());
    BOOST_TEST(res.body.empty());
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(concurrent_requests_respect_the_per_host_cap, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    auto options = f.options;
    options.max_connections_per_host = 2;
    https_client client(f.ioc.get_executor(), f.tls, options);
    co_await all_slow_requests_succeed(f, client, 10);
    BOOST_TEST(f.server.peak_active <= 2);
    BOOST_TEST(client.stats().tls_handshakes == 2u);
    BOOST_TEST(client.stats().reused == 8u);
  }(*this));
}

// Twenty requests at once on a cold client: twenty connections, but only three handshaking at a time.
BOOST_FIXTURE_TEST_CASE(handshakes_take_turns, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    auto options = f.options;
    options.max_connections_per_host = 20;
    options.max_concurrent_handshakes = 3;
    https_client client(f.ioc.get_executor(), f.tls, options);
    co_await all_slow_requests_succeed(f, client, 20);
    BOOST_TEST(client.stats().tls_handshakes == 20u);
    BOOST_TEST(f.server.peak_active == 20);  // the answers (50 ms each) overlapped: all were open at once
    BOOST_TEST(client.stats().peak_handshaking == 3u);  // without turns: 20
    // The server's view lags the client's (a client is done once it has sent its Finished, the server
    // when it has read it), so it may see one or two more; never all twenty.
    BOOST_TEST(f.server.peak_handshaking <= 6);
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(waiting_for_a_free_connection_has_a_deadline, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    auto options = f.options;
    options.max_connections_per_host = 1;
    options.request_timeout = 300ms;
    https_client client(f.ioc.get_executor(), f.tls, options);
    std::vector<error_code> results(2);
    int remaining = 2;
    asio::steady_timer all_done(f.ioc, asio::steady_timer::time_point::max());
    for (std::size_t i = 0; i < results.size(); ++i) {
      asio::co_spawn(f.ioc, client.send(get(f.server.url(i == 0 ? "/hang" : "/status/200"))),
                     [&, i](std::exception_ptr e, std::pair<error_code, http_response> r) {
                       rethrow(e);
                       results[i] = r.first;
                       if (--remaining == 0) all_done.cancel();
                     });
    }
    co_await all_done.async_wait(use_tuple);
    BOOST_TEST(results[0] == asio::error::timed_out, results[0].message());
    BOOST_TEST(results[1] == asio::error::timed_out, results[1].message());
    BOOST_TEST(f.server.accepted == 1);
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(non_https_urls_and_bad_headers_are_invalid_arguments, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    https_client client(f.ioc.get_executor(), f.tls, f.options);
    auto [ec, res] = co_await client.send(get("http://127.0.0.1:" + std::to_string(f.server.port()) + "/"));
    BOOST_TEST(ec == asio::error::invalid_argument);
    auto injected = get(f.server.url("/status/200"));
    injected.headers = {{"X-Note", "a\r\nX-Evil: 1"}};
    std::tie(ec, res) = co_await client.send(injected);
    BOOST_TEST(ec == asio::error::invalid_argument);
    auto bad_token = get(f.server.url("/status/200"));
    bad_token.bearer_token = std::make_shared<const std::string>("t\r\nX-Evil: 1");
    std::tie(ec, res) = co_await client.send(bad_token);
    BOOST_TEST(ec == asio::error::invalid_argument);
    BOOST_TEST(f.server.accepted == 0);
  }(*this));
}

BOOST_FIXTURE_TEST_CASE(destroying_the_client_aborts_requests_in_flight, fixture) {
  run([](fixture& f) -> asio::awaitable<void> {
    auto options = f.options;
    options.max_connections_per_host = 1;  // the second request waits for a slot
    auto client = std::make_unique<https_client>(f.ioc.get_executor(), f.tls, options);
    std::vector<error_code> results(2);
    int remaining = 2;
    asio::steady_timer all_done(f.ioc, asio::steady_timer::time_point::max());
    for (std::size_t i = 0; i < results.size(); ++i) {
      asio::co_spawn(f.ioc, client->send(get(f.server.url("/hang"))),
                     [&, i](std::exception_ptr e, std::pair<error_code, http_response> r) {
                       rethrow(e);
                       results[i] = r.first;
                       if (--remaining == 0) all_done.cancel();
                     });
    }
    co_await sleep_for(100ms);
    client.reset();
    co_await all_done.async_wait(use_tuple);
    BOOST_TEST(results[0] == asio::error::operation_aborted, results[0].message());
    BOOST_TEST(results[1] == asio::error::operation_aborted, results[1].message());
  }(*this));
}

BOOST_AUTO_TEST_CASE(client_and_io_context_can_be_destroyed_with_a_request_pending) {
  // The owner stops the io_context, destroys the client, then the io_context with the request's frame.
  asio::io_context ioc;
  tcp::acceptor silent(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  auto tls = esd::net::make_client_tls_context("");
  auto client = std::make_unique<https_client>(ioc.get_executor(), tls, client_options{});
  bool completed = false;
  asio::co_spawn(
      ioc, client->send(get("https://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/")),
      [&](std::exception_ptr, std::pair<error_code, http_response>) { completed = true; });
  ioc.run_for(100ms);
  ioc.stop();
  client.reset();
  BOOST_TEST(!completed);
}
