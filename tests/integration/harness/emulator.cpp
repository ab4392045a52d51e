// The emulator's control API (/_emulator/...), and players seeded at its start.
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <sstream>

#include "harness/harness.hpp"

namespace esd::test {

std::string emulator_instance::control(const std::string& method, const std::string& path,
                                       const std::string& json_body) {
  auto body_file = dir_.path() / "control-body.json";
  write_text(body_file, json_body);
  std::vector<std::string> argv{"curl",       "-sS",
                                "--max-time", "30",
                                "--cacert",   ca_file_.string(),
                                "-X",         method,
                                "-H",         "Content-Type: application/json",
                                "-w",         "\n%{http_code}"};
  if (!json_body.empty()) {
    argv.push_back("--data-binary");
    argv.push_back("@" + body_file.string());
  }
  argv.push_back(base_url_ + path);
  auto r = run_process(argv, std::chrono::seconds(40));
  BOOST_TEST_REQUIRE(r.exit_code == 0, "curl " << method << " " << path << " failed: " << r.output);
  auto nl = r.output.rfind('\n');
  BOOST_TEST_REQUIRE(nl != std::string::npos);
  int status = std::atoi(r.output.c_str() + nl + 1);
  std::string body = r.output.substr(0, nl);
  BOOST_TEST_REQUIRE((status >= 200 && status < 300),
                     method << " " << path << " -> " << status << ": " << body);
  return body;
}

std::string emulator_instance::mint_key(const std::string& user_id, const std::string& kind,
                                        std::optional<long long> issued_at,
                                        std::optional<long long> expires_at, const std::string& refresh_uri) {
  boost::json::object req{{"userId", user_id}, {"kind", kind}};
  if (issued_at) req["issuedAt"] = *issued_at;
  if (expires_at) req["expiresAt"] = *expires_at;
  if (!refresh_uri.empty()) req["refreshUri"] = refresh_uri;
  auto body = boost::json::parse(control("POST", "/_emulator/keys", boost::json::serialize(req)));
  return std::string(body.at("key").as_string());
}

void emulator_instance::put_items(const std::string& user_id, const std::string& items_json_array) {
  control("PUT", "/_emulator/players/" + user_id + "/items", "{\"items\":" + items_json_array + "}");
}

void emulator_instance::put_catalog(const std::string& products_json_array) {
  control("PUT", "/_emulator/catalog", products_json_array);
}

void emulator_instance::put_subscriptions(const std::string& user_id,
                                          const std::string& subscriptions_json_array) {
  control("PUT", "/_emulator/players/" + user_id + "/subscriptions", subscriptions_json_array);
}

std::string emulator_instance::grants() {
  auto v = boost::json::parse(control("GET", "/_emulator/orders"));
  return boost::json::serialize(v.at("orders"));
}

std::string emulator_instance::make_items(const std::string& prefix, int n, const std::string& status) {
  boost::json::array items;
  for (int i = 0; i < n; ++i) {
    char date[64];
    std::snprintf(date, sizeof date, "2024-%02d-%02dT10:%02d:%02d.1234567+00:00", 1 + i % 12, 1 + i % 28,
                  i % 60, (i * 7) % 60);
    items.push_back(boost::json::object{{"itemId", prefix + "-" + std::to_string(i)},
                                        {"productId", "9P" + std::to_string(100000 + i)},
                                        {"skuId", "0010"},
                                        {"productType", i % 3 == 0 ? "Game" : "Durable"},
                                        {"status", status},
                                        {"quantity", 1},
                                        {"acquiredDate", date},
                                        {"startDate", date},
                                        {"endDate", "9999-12-31T23:59:59.9999999+00:00"},
                                        {"transactionId", "tx-" + prefix + "-" + std::to_string(i)},
                                        {"orderId", "order-" + prefix + "-" + std::to_string(i)}});
  }
  return boost::json::serialize(items);
}

void emulator_instance::add_fault(const std::string& rule_json) {
  control("POST", "/_emulator/faults", rule_json);
}

boost::json::value emulator_instance::stats() {
  return boost::json::parse(control("GET", "/_emulator/stats"));
}

long long emulator_instance::stat(const std::string& name) {
  auto v = stats();
  auto* p = v.as_object().if_contains(name);
  BOOST_TEST_REQUIRE(p != nullptr, "no emulator stat " << name);
  return p->to_number<long long>();
}

long long emulator_instance::stat(const std::string& map, const std::string& key) {
  auto v = stats();
  auto* m = v.as_object().if_contains(map);
  if (!m || !m->is_object()) return 0;
  auto* p = m->as_object().if_contains(key);
  return p && p->is_number() ? p->to_number<long long>() : 0;
}

std::map<std::string, long long> emulator_instance::item_counts() {
  auto v = boost::json::parse(control("GET", "/_emulator/players"));
  std::map<std::string, long long> out;
  for (const auto& [id, n] : v.at("players").as_object()) out[std::string(id)] = n.to_number<long long>();
  return out;
}

seeded_players::seeded_players() : dir_("esd-seed") {}

void seeded_players::add(const std::string& user_id, const std::string& items_json_array) {
  if (count_++) players_ += ',';
  players_ += "{\"userId\":" + boost::json::serialize(boost::json::value(user_id)) +
              ",\"items\":" + items_json_array + "}";
}

std::vector<std::string> seeded_players::emulator_args() const {
  const auto seed = dir_.path() / "seed.json";
  write_text(seed, "{\"players\":[" + players_ + "]}");
  return {"--seed", seed.string(), "--keys-out", (dir_.path() / "keys.csv").string()};
}

std::map<std::string, std::string> seeded_players::collections_keys() const {
  std::istringstream in(read_text(dir_.path() / "keys.csv"));
  std::map<std::string, std::string> out;
  std::string line;
  std::getline(in, line);  // user_id,collections_key,purchase_key
  while (std::getline(in, line)) {
    const auto a = line.find(',');
    const auto b = a == std::string::npos ? a : line.find(',', a + 1);
    BOOST_TEST_REQUIRE(b != std::string::npos, "bad --keys-out line: " << line.substr(0, 40));
    out[line.substr(0, a)] = line.substr(a + 1, b - a - 1);
  }
  BOOST_TEST_REQUIRE(out.size() >= count_,
                     "the emulator wrote " << out.size() << " keys for " << count_ << " seeded players");
  return out;
}

}  // namespace esd::test
