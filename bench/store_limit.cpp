// The Store side's limit for the benchmark: a plain client that asks the emulator for what the daemon asks
// for each player: every page of the collection (maxPageSize 100) and, at the same time, the subscriptions
// (unless --subscriptions off, as with [store] subscriptions = off), with a given number of players in
// flight, over pooled, verified TLS. It reads the collection answers only as far as the item count and
// the continuation token. No database, no normalization: what the emulator and TLS on this machine can
// serve, to compare the daemon's throughput with.
//
//   esd-bench-store-limit --url https://127.0.0.1:PORT --ca-file CA.pem --keys keys.csv
//       --client-secret-file FILE [--concurrency N] [--players N] [--subscriptions on|off]
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <fstream>
#include <optional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "net/https_client.hpp"
#include "store/collections.hpp"
#include "store/purchase.hpp"

namespace asio = boost::asio;
namespace json = boost::json;
using namespace esd;

namespace {

constexpr const char* tenant = "00000000-0000-0000-0000-000000000000";
constexpr const char* client_id = "11111111-1111-1111-1111-111111111111";

struct totals {
  long long players = 0, pages = 0, items = 0, subscription_pages = 0, errors = 0;
};

struct player_keys {
  std::string collections, purchase;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every page of one player's collection.
asio::awaitable<void> collection(net::https_client& client, const std::string& base, const std::string& token,
                                 const std::string& key, totals& t) {
  store::collections_query_v6 q;
  q.collections_key = key;
  q.product_types = {"Application", "Durable", "Game", "UnmanagedConsumable"};
  q.max_page_size = 100;
  while (true) {
    net::http_request r;
    r.url = base + "/v6.0/collections/query";
    r.headers = {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
    r.body = store::build_collections_query_v6(q);
    auto [ec, resp] = co_await client.send(std::move(r));
    if (ec || resp.status != 200) {
      ++t.errors;
      co_return;
    }
    ++t.pages;
    boost::system::error_code jec;
    auto doc = json::parse(resp.body, jec);
    if (jec || !doc.is_object()) {
      ++t.errors;
      co_return;
    }
    const auto& o = doc.get_object();
    if (auto* items = o.if_contains("items"); items && items->is_array()) t.items += items->get_array().size();
    auto* token_v = o.if_contains("continuationToken");
    if (!token_v || !token_v->is_string() || token_v->get_string().empty()) co_return;
    q.continuation_token = std::string(token_v->get_string());
  }
}

// Every page of one player's subscriptions, as the daemon reads them beside the collection.
asio::awaitable<void> subscriptions(net::https_client& client, const std::string& base, const std::string& token,
                                    const std::string& purchase_key, totals& t) {
  std::optional<std::string> continuation;
  while (true) {
    net::http_request r;
    r.url = base + "/v8.0/b2b/recurrences/query";
    r.headers = {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
    r.body = store::build_recurrences_query(purchase_key, continuation);
    auto [ec, resp] = co_await client.send(std::move(r));
    if (ec || resp.status != 200) {
      ++t.errors;
      co_return;
    }
    ++t.subscription_pages;
    auto parsed = store::parse_recurrences_response(resp.body);
    if (!parsed) {
      ++t.errors;
      co_return;
    }
    if (!parsed.page->continuation_token) co_return;
    continuation = std::move(parsed.page->continuation_token);
  }
}

asio::awaitable<void> worker(net::https_client& client, const std::string& base, const std::string& token,
                             const std::vector<player_keys>& keys, bool with_subscriptions, std::size_t& next,
                             totals& t) {
  using namespace asio::experimental::awaitable_operators;
  while (next < keys.size()) {
    const player_keys& k = keys[next++];
    if (with_subscriptions && !k.purchase.empty()) {
      auto both = collection(client, base, token, k.collections, t) &&
                  subscriptions(client, base, token, k.purchase, t);
      co_await std::move(both);
    } else {
      co_await collection(client, base, token, k.collections, t);
    }
    ++t.players;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, ca, keys_file, secret_file;
  int concurrency = 64;
  long long max_players = 0;
  bool with_subscriptions = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--url") url = v;
    else if (a == "--ca-file") ca = v;
    else if (a == "--keys") keys_file = v;
    else if (a == "--client-secret-file") secret_file = v;
    else if (a == "--concurrency") concurrency = std::stoi(v);
    else if (a == "--players") max_players = std::stoll(v);
    else if (a == "--subscriptions") with_subscriptions = v != "off";
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  if (url.empty() || keys_file.empty() || secret_file.empty()) {
    std::cerr << "usage: esd-bench-store-limit --url URL --ca-file CA --keys keys.csv --client-secret-file FILE "
                 "[--concurrency N] [--players N] [--subscriptions on|off]\n";
    return 2;
  }
  std::vector<player_keys> keys;
  {
    std::ifstream in(keys_file);
    std::string line;
    std::getline(in, line);  // header: user_id,collections_key,purchase_key
    while (std::getline(in, line)) {
      const auto a = line.find(','), b = line.find(',', a + 1);
      if (a == std::string::npos) continue;
      player_keys k;
      k.collections = line.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
      if (b != std::string::npos) k.purchase = line.substr(b + 1);
      keys.push_back(std::move(k));
      if (max_players > 0 && static_cast<long long>(keys.size()) >= max_players) break;
    }
  }
  std::string secret = read_file(secret_file);
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();

  asio::io_context io(1);
  auto tls = net::make_client_tls_context(ca);
  net::client_options opts;
  opts.max_connections_per_host = static_cast<std::size_t>(concurrency);
  opts.max_idle_per_host = static_cast<std::size_t>(concurrency);
  net::https_client client(io.get_executor(), tls, opts);

  std::string token;
  totals t;
  std::size_t next = 0;
  double seconds = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        net::http_request r;
        r.url = url + "/" + tenant + "/oauth2/v2.0/token";
        r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
        r.body = std::string("grant_type=client_credentials&client_id=") + client_id + "&client_secret=" + secret +
                 "&scope=https%3A%2F%2Fonestore.microsoft.com%2F.default";
        auto [ec, resp] = co_await client.send(std::move(r));
        if (ec || resp.status != 200) {
          std::cerr << "token request failed: " << (ec ? ec.message() : std::to_string(resp.status)) << "\n";
          co_return;
        }
        token = std::string(json::parse(resp.body).at("access_token").as_string());
        const auto started = std::chrono::steady_clock::now();
        int running = concurrency;
        asio::steady_timer done(io, std::chrono::steady_clock::time_point::max());
        for (int i = 0; i < concurrency; ++i)
          asio::co_spawn(io, worker(client, url, token, keys, with_subscriptions, next, t), [&](std::exception_ptr) {
            if (--running == 0) done.cancel();
          });
        co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      },
      asio::detached);
  io.run();
  if (token.empty()) return 1;
  std::cout << "players=" << t.players << " pages=" << t.pages << " items=" << t.items << " subscription_pages=" << t.subscription_pages << " errors=" << t.errors
            << " seconds=" << seconds << " players_per_s=" << (seconds > 0 ? t.players / seconds : 0)
            << " items_per_s=" << (seconds > 0 ? t.items / seconds : 0)
            << " tls_handshakes=" << client.stats().tls_handshakes << "\n";
  return t.errors == 0 ? 0 : 1;
}
