// entitlement-store-emulator: a Microsoft Store (collections query and consume, key renewal, free-product
// grants, subscriptions) and Entra ID (client credentials) stand-in over real TLS, for integration tests, the
// demo and benchmarks. See --help.
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "emulator/collections_service.hpp"
#include "emulator/consume_service.hpp"
#include "emulator/control_api.hpp"
#include "emulator/emulator_routes.hpp"
#include "emulator/emulator_state.hpp"
#include "emulator/entra.hpp"
#include "emulator/https_server.hpp"
#include "emulator/jwt_signer.hpp"
#include "emulator/purchase_service.hpp"
#include "emulator/store_keys.hpp"
#include "emulator/tls_identity.hpp"

namespace {

namespace asio = boost::asio;
using namespace esd::emulator;

constexpr const char* usage = R"(usage: entitlement-store-emulator [options]
  --listen ADDR:PORT          default 127.0.0.1:0 (0 = pick a free port)
  --public-host NAME          default localhost: host in refreshUri claims, the certificate SAN and the base URL
  --ready-file FILE           once listening, write the base URL "https://<public-host>:PORT\n"
  --cert-out FILE             write the generated self-signed certificate (PEM) for clients to trust
  --cert FILE --key FILE      use this certificate and key instead of generating one
  --seed FILE                 players and their items: {"players":[{"userId":..,"items":[<v6 items>]}]}
  --generate-players N        also create players <prefix>1..<prefix>N with --items-per-player items each
  --items-per-player M        (default 20)
  --player-prefix P           (default "player-")
  --keys-out FILE             write "user_id,collections_key,purchase_key" lines (header first) for every player
  --tenant-id T               the one Entra tenant (default 00000000-0000-0000-0000-000000000000)
  --client-id C               the one Entra app (default 11111111-1111-1111-1111-111111111111)
  --client-secret-file F      its secret (default "emulator-secret")
  --token-lifetime SECONDS    Entra access token lifetime (default 3599)
  --key-lifetime SECONDS      Store ID key lifetime (default 2592000, 30 days)
  --latency-ms N              added to every Store and Entra answer (default 0)
  --user-budget N/SECONDS     per-player operations per sliding window (default 200/300); beyond: 429
  --recurrence-page-size N    subscriptions per recurrences query page (default 2, so paging happens)
  --threads N                 io threads (default 1)
  --log-requests              one line per request to stderr: method, path, status, milliseconds
  --help

Endpoints, all on one port (Bearer token from the Entra path, audience https://onestore.microsoft.com):
  POST /{tenant}/oauth2/token, /{tenant}/oauth2/v2.0/token    Entra ID, client credentials
  POST /v6.0/collections/query      collections key in beneficiaries[0]; paged items
  POST /v6.0/collections/consume    collections key in beneficiary; itemId+trackingId or
                                    productId+transactionId; the consumable's quantity goes to 0 (status
                                    Expired); 204; same tracking id again: 204, no change
  POST /v6.0/b2b/keys/renew         either kind of key
  POST /v6.0/purchases/grant        purchase key in b2bKey; a free product of the catalog; orderId is the
                                    idempotency key (per user): same order again, same answer; other body: 409
  POST /v8.0/b2b/recurrences/query  purchase key in b2bKey; the player's subscriptions, paged

Control API (JSON, no auth, never delayed, throttled or faulted):
  POST /_emulator/keys                        {"userId","kind":"collections"|"purchase","issuedAt","expiresAt",
                                              "clientId","refreshUri"} -> {"key",...}
  GET  /_emulator/players                     {"players":{userId: item count}}
  GET|PUT /_emulator/players/{id}/items       {"items":[<v6 items>]} (PUT merges by itemId)
  POST /_emulator/players/{id}/items/{itemId} change fields of one item
  GET|PUT /_emulator/players/{id}/subscriptions   [{productId, skuId, recurrenceState, autoRenew, isTrial,
                                              startTime, expirationTime, expirationTimeWithGrace,
                                              cancellationDate, market, beneficiary, id}] replaces them all;
                                              documented states: None Active Inactive Canceled InDunning
                                              Failed (and Revoked); any other is served as given
  GET|PUT /_emulator/catalog                  [{productId, skuId, availabilityId, productType, title}]
                                              replaces the free products a grant may grant
  GET  /_emulator/orders                      the grant orders made
  GET|POST|DELETE /_emulator/faults           POST {"path","count","mode","status","retryAfter","userId",
                                              "probability"}; mode: status (default, with status), drop,
                                              truncate, malformed, hang, drop_after (carry the request
                                              out, then close the connection without answering), or echo
                                              (a text answer with status that repeats the request body);
                                              page loop (collections and recurrences queries): cycle
                                              (continuation tokens A -> B -> A ...), or huge with "bytes"
                                              (pages of that size, continued while hits are left);
                                              hostile content with "field" (default productId), "item":
                                              nul_text, bad_utf8_text, giant_text ("size" bytes, default
                                              15 MiB), number ("value"), bad_utf8_error (with status,
                                              default 400)
  GET|POST /_emulator/settings                {"latencyMs","userBudget":"N/SECONDS"}
  GET  /_emulator/tokens, POST /_emulator/tokens/revoke
                                              every access token issued so far is refused by every Store
                                              endpoint (401 AuthenticationTokenInvalid); later ones work.
                                              -> {"issued","revokedThrough","revokedRefusals"}
  GET  /_emulator/stats, POST /_emulator/stats/reset
)";

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct options {
  std::string listen = "127.0.0.1:0";
  std::string ready_file, cert_out, cert_file, key_file, seed_file, keys_out, client_secret_file;
  int generate_players = 0, items_per_player = 20, threads = 1, latency_ms = 0;
  int budget_ops = 200, budget_window = 300;
  std::string player_prefix = "player-";
  emulator_config config;
};

std::int64_t parse_number(const std::string& flag, const std::string& text, std::int64_t min,
                          std::int64_t max) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v < min || v > max)
    throw usage_error(flag + " wants a whole number from " + std::to_string(min) + " to " +
                      std::to_string(max) + ", not \"" + text + "\"");
  return v;
}

options parse_options(int argc, char** argv) {
  options o;
  static const std::map<std::string, bool> known = {{"--listen", true},
                                                    {"--public-host", true},
                                                    {"--ready-file", true},
                                                    {"--cert-out", true},
                                                    {"--cert", true},
                                                    {"--key", true},
                                                    {"--seed", true},
                                                    {"--generate-players", true},
                                                    {"--items-per-player", true},
                                                    {"--player-prefix", true},
                                                    {"--keys-out", true},
                                                    {"--tenant-id", true},
                                                    {"--client-id", true},
                                                    {"--client-secret-file", true},
                                                    {"--token-lifetime", true},
                                                    {"--key-lifetime", true},
                                                    {"--latency-ms", true},
                                                    {"--user-budget", true},
                                                    {"--recurrence-page-size", true},
                                                    {"--threads", true},
                                                    {"--log-requests", false},
                                                    {"--help", false}};
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i], value;
    bool has_inline_value = false;
    if (const auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline_value = true;
    }
    const auto it = known.find(flag);
    if (it == known.end()) throw usage_error("unknown option " + flag);
    if (it->second && !has_inline_value) {
      if (i + 1 >= argc) throw usage_error(flag + " needs a value");
      value = argv[++i];
    } else if (!it->second && has_inline_value) {
      throw usage_error(flag + " takes no value");
    }
    if (flag == "--help") {
      std::cout << usage;
      std::exit(0);
    }
    if (flag == "--listen")
      o.listen = value;
    else if (flag == "--public-host")
      o.config.public_host = value;
    else if (flag == "--ready-file")
      o.ready_file = value;
    else if (flag == "--cert-out")
      o.cert_out = value;
    else if (flag == "--cert")
      o.cert_file = value;
    else if (flag == "--key")
      o.key_file = value;
    else if (flag == "--seed")
      o.seed_file = value;
    else if (flag == "--generate-players")
      o.generate_players = static_cast<int>(parse_number(flag, value, 0, 10'000'000));
    else if (flag == "--items-per-player")
      o.items_per_player = static_cast<int>(parse_number(flag, value, 0, 100'000));
    else if (flag == "--player-prefix")
      o.player_prefix = value;
    else if (flag == "--keys-out")
      o.keys_out = value;
    else if (flag == "--tenant-id")
      o.config.tenant_id = value;
    else if (flag == "--client-id")
      o.config.client_id = value;
    else if (flag == "--client-secret-file")
      o.client_secret_file = value;
    else if (flag == "--token-lifetime")
      o.config.token_lifetime_seconds = parse_number(flag, value, 1, 10 * 365 * 86400LL);
    else if (flag == "--key-lifetime")
      o.config.key_lifetime_seconds = parse_number(flag, value, 1, 10 * 365 * 86400LL);
    else if (flag == "--latency-ms")
      o.latency_ms = static_cast<int>(parse_number(flag, value, 0, 600'000));
    else if (flag == "--user-budget") {
      if (!parse_budget(value, o.budget_ops, o.budget_window))
        throw usage_error("--user-budget wants N/SECONDS with both positive, e.g. 200/300, not \"" + value +
                          "\"");
    } else if (flag == "--recurrence-page-size")
      o.config.recurrence_page_size = static_cast<int>(parse_number(flag, value, 1, 1000));
    else if (flag == "--threads")
      o.threads = static_cast<int>(parse_number(flag, value, 1, 256));
    else if (flag == "--log-requests")
      o.config.log_requests = true;
  }
  if (o.cert_file.empty() != o.key_file.empty()) throw usage_error("--cert and --key go together");
  if (o.config.public_host.empty()) throw usage_error("--public-host must not be empty");
  if (o.config.tenant_id.empty() || o.config.client_id.empty())
    throw usage_error("--tenant-id and --client-id must not be empty");
  return o;
}

asio::ip::tcp::endpoint parse_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw usage_error("--listen wants ADDR:PORT, not \"" + text + "\"");
  std::string host = text.substr(0, colon);
  const auto port =
      static_cast<std::uint16_t>(parse_number("--listen port", text.substr(colon + 1), 0, 65535));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty() || host == "*") host = "0.0.0.0";
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw usage_error("--listen wants an IP address (or localhost), not \"" + host + "\"");
  return {address, port};
}

// Readers never see a half-written file: write beside it, then rename over it.
void write_file_atomically(const std::string& path, const std::string& content, bool secret = false) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    if (secret)
      std::filesystem::permissions(tmp,
                                   std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    out << content;
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

std::string read_secret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the client secret file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  if (s.empty()) throw std::runtime_error("the client secret file " + path + " is empty");
  return s;
}

// Fresh collections and purchase keys for every player, minted on all cores (RSA signing dominates).
std::string mint_all_keys(const std::vector<std::string>& players, const store_key_authority& keys,
                          const emulator_config& config) {
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::vector<std::string> lines(players.size());
  const unsigned workers = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(), 16));
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < workers; ++w) {
    pool.emplace_back([&, w] {
      for (std::size_t i = w; i < players.size(); i += workers) {
        store_key_spec spec{players[i],
                            esd::store::key_kind::collections,
                            now,
                            now + config.key_lifetime_seconds,
                            config.client_id,
                            config.refresh_uri()};
        std::string line = players[i] + "," + keys.mint(spec) + ",";
        spec.kind = esd::store::key_kind::purchase;
        line += keys.mint(spec) + "\n";
        lines[i] = std::move(line);
      }
    });
  }
  for (auto& t : pool) t.join();
  std::string out = "user_id,collections_key,purchase_key\n";
  for (const auto& l : lines) out += l;
  return out;
}

int run(options o) {
  if (!o.client_secret_file.empty()) o.config.client_secret = read_secret(o.client_secret_file);
  const auto endpoint = parse_listen(o.listen);

  const tls_identity identity = o.cert_file.empty() ? generate_tls_identity(o.config.public_host)
                                                    : load_tls_identity(o.cert_file, o.key_file);
  auto tls = make_server_tls_context(identity);
  if (!o.cert_out.empty()) write_file_atomically(o.cert_out, identity.certificate_pem);

  emulator_state state;
  state.latency_ms = o.latency_ms;
  state.budget.configure(o.budget_ops, o.budget_window);
  if (!o.seed_file.empty()) state.players.load_seed(o.seed_file);
  if (o.generate_players > 0) state.players.generate(o.generate_players, o.items_per_player, o.player_prefix);

  const jwt_signer signer;
  const store_key_authority keys(signer);
  entra_issuer entra(signer, o.config);
  store_service store(state, o.config, entra, keys);
  purchase_service purchase(state, o.config, entra, keys);
  consume_service consume(state, entra, keys);
  control_api control(state, o.config, keys, entra);
  emulator_routes routes(state, o.config, entra, store, purchase, consume, control);

  asio::io_context ioc(o.threads);
  https_server server(ioc, tls, endpoint, routes);
  o.config.port = server.port();  // handlers read the config by reference: refreshUri now has the port

  if (!o.keys_out.empty()) {
    std::vector<std::string> ids;
    for (const auto& [id, p] : state.players.all()) ids.push_back(id);
    write_file_atomically(o.keys_out, mint_all_keys(ids, keys, o.config), true);
  }

  server.start();
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) ioc.stop();
  });
  if (!o.ready_file.empty()) write_file_atomically(o.ready_file, o.config.base_url() + "\n");
  std::cerr << "entitlement-store-emulator: listening on " << endpoint.address().to_string() << ":"
            << server.port() << ", base URL " << o.config.base_url() << ", " << state.players.all().size()
            << " players, tenant " << o.config.tenant_id << ", client " << o.config.client_id << "\n";

  std::vector<std::thread> threads;
  for (int i = 1; i < o.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const usage_error& e) {
    std::cerr << "entitlement-store-emulator: " << e.what() << "\n" << usage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "entitlement-store-emulator: " << e.what() << "\n";
    return 1;
  }
}
