// The config key table: the parser accepts exactly its keys, every value it shows reads back the same,
// and a reload names each changed key once, applied or needing a restart, as the table says.
#define BOOST_TEST_MODULE config_keys
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "config/config.hpp"
#include "config/config_keys.hpp"

using namespace esd::config;

namespace {

config with_required() {
  config c;
  c.database.url = "postgresql:///entitlements";
  c.entra.tenant_id = "contoso.onmicrosoft.com";
  c.entra.client_id = "11111111-2222-3333-4444-555555555555";
  return c;
}

// A config file that sets every key of the table to its value in c.
std::string file_of(const config& c) {
  std::string text;
  for (const auto& k : key_specs())
    text += "[" + std::string(k.section) + "]\n" + std::string(k.name) + " = " + value_text(k, c) + "\n";
  return text;
}

std::string name_of(const key_spec& k) { return std::string(k.section) + "." + std::string(k.name); }

// A valid value for k other than its value in c: the range's ends, or a few values of each kind.
std::string other_value(const key_spec& k, const config& c) {
  const std::string now = value_text(k, c);
  const auto [min, max] = k.range;
  std::vector<std::string> candidates{std::to_string(min), std::to_string(max), std::to_string(min) + "ms",
                                      std::to_string(max) + "ms", "error", "off", "on", "Game, Durable",
                                      "127.0.0.1:9999", "other.example", now + "-changed"};
  for (const auto& candidate : candidates) {
    config probe = c;
    if (candidate != now && set_value(k, probe, candidate).empty() && value_text(k, probe) != now) return candidate;
  }
  BOOST_FAIL("no other valid value found for " << name_of(k));
  return {};
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_parser_accepts_every_key_of_the_table_and_reads_back_what_it_shows) {
  const config c = with_required();
  const config parsed = parse_config(file_of(c), "every-key.conf");
  for (const auto& k : key_specs()) BOOST_TEST(value_text(k, parsed) == value_text(k, c), name_of(k));
  BOOST_TEST(changed_keys(c, parsed).empty());
}

BOOST_AUTO_TEST_CASE(the_parser_accepts_no_key_outside_the_table) {
  // Each key of the table, put in every other section, is unknown there unless the table has it there too.
  std::set<std::string> sections;
  for (const auto& k : key_specs()) sections.emplace(k.section);
  const std::string required = file_of(with_required());
  for (const auto& k : key_specs()) {
    for (const auto& s : sections) {
      if (find_key(s, k.name)) continue;
      const std::string text = required + "[" + s + "]\n" + std::string(k.name) + " = 1\n";
      BOOST_CHECK_THROW(parse_config(text, "test.conf"), config_error);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_example_config_lists_exactly_the_keys_of_the_table) {
  std::ifstream in(std::string(ESD_SOURCE_DIR) + "/conf/entitlement-syncd.conf");
  BOOST_TEST_REQUIRE(in.good());
  std::set<std::string> listed;
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.starts_with("[")) section = line.substr(1, line.find(']') - 1);
    else if (auto eq = line.find(" ="); !line.starts_with("#") && eq != std::string::npos)
      listed.insert(section + "." + line.substr(0, eq));
  }
  std::set<std::string> table;
  for (const auto& k : key_specs()) table.insert(name_of(k));
  BOOST_TEST(listed == table, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_change_to_any_one_key_is_named_exactly_once) {
  const config before = with_required();
  for (const auto& k : key_specs()) {
    BOOST_TEST_CONTEXT(name_of(k)) {
      config after = before;
      const std::string value = other_value(k, before);
      BOOST_TEST_REQUIRE(set_value(k, after, value).empty());

      const auto changes = changed_keys(before, after);
      BOOST_TEST_REQUIRE(changes.size() == 1u);
      BOOST_TEST(changes[0].key == &k);

      config running = before;
      const auto reloaded = apply_live_keys(running, after);
      BOOST_TEST(reloaded.applied.size() + reloaded.needs_restart.size() == 1u);
      if (k.reload == on_reload::live) {
        BOOST_TEST_REQUIRE(reloaded.applied.size() == 1u);
        BOOST_TEST(reloaded.applied[0] == std::string(k.section) + " " + std::string(k.name) + " " +
                                              value_text(k, before) + " -> " + value_text(k, after));
        BOOST_TEST(value_text(k, running) == value_text(k, after));
      } else {
        BOOST_TEST_REQUIRE(reloaded.needs_restart.size() == 1u);
        BOOST_TEST(reloaded.needs_restart[0] == display_name(k));
        BOOST_TEST(value_text(k, running) == value_text(k, before));  // kept until a restart
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(keys_that_need_a_restart_are_named_without_their_values) {
  config before = with_required();
  config after = before;
  after.database.url = "postgresql://app:hunter2@db.example/entitlements";
  const auto reloaded = apply_live_keys(before, after);
  BOOST_TEST_REQUIRE(reloaded.needs_restart.size() == 1u);
  BOOST_TEST(reloaded.needs_restart[0] == "[database] url");
  BOOST_TEST(before.database.url == "postgresql:///entitlements");
}

BOOST_AUTO_TEST_CASE(keys_once_ignored_on_reload_need_a_restart_and_the_sync_limits_apply_live) {
  // Spot checks of the table against what README's Reload paragraph promises.
  BOOST_TEST((find_key("store", "subscriptions")->reload == on_reload::restart));
  BOOST_TEST((find_key("metrics", "listen")->reload == on_reload::restart));
  BOOST_TEST((find_key("sync", "drain_grace")->reload == on_reload::restart));
  BOOST_TEST((find_key("sync", "concurrency")->reload == on_reload::live));
  BOOST_TEST((find_key("log", "level")->reload == on_reload::live));
}
