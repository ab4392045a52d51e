#define BOOST_TEST_MODULE config
#include "config/config.hpp"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace esd::config;
using namespace std::chrono_literals;

namespace {

// The example from INTERFACE.md, verbatim: operators copy it, so it must parse as it stands.
const std::string interface_example = R"([database]
url = postgresql:///entitlements          # libpq URI or key=value string

[entra]                                    # Microsoft Entra ID (formerly Azure AD) app
tenant_id = 00000000-0000-0000-0000-000000000000
client_id = 00000000-0000-0000-0000-000000000000
client_secret_file = /run/credentials/entitlement-syncd.service/client_secret
token_url =                                # default https://login.microsoftonline.com/<tenant_id>/oauth2/v2.0/token

[store]
collections_url = https://collections.mp.microsoft.com
purchase_url = https://purchase.mp.microsoft.com
ca_file =                                  # optional PEM file of extra trust anchors; TLS is always verified

[sync]
drain_grace = 30s
)";

const std::string required = R"([database]
url = postgresql:///entitlements
[entra]
tenant_id = contoso.onmicrosoft.com
client_id = 11111111-2222-3333-4444-555555555555
)";

config_error error_of(const std::string& text) {
  try {
    parse_config(text, "test.conf");
  } catch (const config_error& e) {
    BOOST_TEST_MESSAGE(e.what());
    return e;
  }
  BOOST_FAIL("expected a config_error for:\n" << text);
  return config_error("", -1, "");  // not reached: BOOST_FAIL throws
}

// A scratch directory removed at the end of the test.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "esd-config-test-XXXXXX").string();
    BOOST_TEST_REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(path / name, std::ios::binary) << content;
    return (path / name).string();
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(interface_example_parses) {
  config c = parse_config(interface_example, "entitlement-syncd.conf");
  BOOST_TEST(c.source_path == "entitlement-syncd.conf");
  BOOST_TEST(c.database.url == "postgresql:///entitlements");
  BOOST_TEST(c.entra.tenant_id == "00000000-0000-0000-0000-000000000000");
  BOOST_TEST(c.entra.client_id == "00000000-0000-0000-0000-000000000000");
  BOOST_TEST(c.entra.client_secret_file == "/run/credentials/entitlement-syncd.service/client_secret");
  BOOST_TEST(c.entra.token_url.empty());
  BOOST_TEST(c.effective_token_url() ==
             "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token");
  BOOST_TEST(c.store.collections_url == "https://collections.mp.microsoft.com");
  BOOST_TEST(c.store.purchase_url == "https://purchase.mp.microsoft.com");
  BOOST_TEST(c.store.ca_file.empty());
  BOOST_TEST(c.sync.drain_grace.count() == 30);
}

BOOST_AUTO_TEST_CASE(defaults) {
  config c = parse_config(required, "x.conf");
  BOOST_TEST(c.database.pool_size == 4);
  BOOST_TEST(c.database.statement_timeout.count() == 30'000);
  BOOST_TEST(c.entra.audience == "https://onestore.microsoft.com");
  BOOST_TEST(c.entra.refresh_before.count() == 300);
  BOOST_TEST(c.effective_token_url() ==
             "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
  BOOST_TEST(c.store.product_types ==
                 (std::vector<std::string>{"Application", "Durable", "Game", "UnmanagedConsumable"}),
             boost::test_tools::per_element());
  BOOST_TEST(c.store.max_page_size == 100);
  BOOST_TEST(c.store.connect_timeout.count() == 10'000);
  BOOST_TEST(c.store.request_timeout.count() == 30'000);
  BOOST_TEST(c.store.max_connections_per_host == 64);
  BOOST_TEST(c.store.max_pages == 1000);
  BOOST_TEST(c.store.max_collection_bytes == 32u * 1024 * 1024);
  BOOST_TEST(c.sync.concurrency == 64);
  BOOST_TEST(c.sync.poll_interval.count() == 10);
  BOOST_TEST(c.sync.drain_grace.count() == 30);
  BOOST_TEST(c.sync.watermark_overlap.count() == 300);
  BOOST_TEST(c.sync.max_attempts == 8);
  BOOST_TEST(c.sync.retry_base.count() == 5);
  BOOST_TEST(c.sync.retry_cap.count() == 900);
  BOOST_TEST(c.sync.shutdown_timeout.count() == 20);
  BOOST_TEST(c.log.level == "info");
}

BOOST_AUTO_TEST_CASE(every_key_can_be_set) {
  config c = parse_config(required + R"(
[database]
pool_size = 8
statement_timeout = 5s
[entra]
client_secret_file = /etc/secret
token_url = https://login.microsoftonline.com/t/oauth2/token
audience = https://onestore.microsoft.com/b2b/keys/create/collections
refresh_before = 10m
[store]
collections_url = https://127.0.0.1:8443
purchase_url = https://[::1]:8444/
ca_file = /etc/ca.pem
product_types = Durable , Game,UnmanagedConsumable
max_page_size = 25
connect_timeout = 250ms
request_timeout = 2m
max_connections_per_host = 1024
max_pages = 5
max_collection_bytes = 8MB
[keys]
refusal_burst_players = 500
refusal_burst_window = 5m
[sync]
concurrency = 4096
poll_interval = 2h
drain_grace = 0
watermark_overlap = 14d
max_attempts = 100
retry_base = 1s
retry_cap = 1d
shutdown_timeout = 30
[log]
level = debug
)",
                          "x.conf");
  BOOST_TEST(c.database.pool_size == 8);
  BOOST_TEST(c.keys.refusal_burst_players == 500);
  BOOST_TEST(c.keys.refusal_burst_window.count() == 300);
  BOOST_TEST(c.database.statement_timeout.count() == 5000);
  BOOST_TEST(c.entra.client_secret_file == "/etc/secret");
  BOOST_TEST(c.effective_token_url() == "https://login.microsoftonline.com/t/oauth2/token");
  BOOST_TEST(c.entra.audience == "https://onestore.microsoft.com/b2b/keys/create/collections");
  BOOST_TEST(c.entra.refresh_before.count() == 600);
  BOOST_TEST(c.store.collections_url == "https://127.0.0.1:8443");
  BOOST_TEST(c.store.purchase_url == "https://[::1]:8444/");
  BOOST_TEST(c.store.ca_file == "/etc/ca.pem");
  BOOST_TEST(c.store.product_types == (std::vector<std::string>{"Durable", "Game", "UnmanagedConsumable"}),
             boost::test_tools::per_element());
  BOOST_TEST(c.store.max_page_size == 25);
  BOOST_TEST(c.store.connect_timeout.count() == 250);
  BOOST_TEST(c.store.request_timeout.count() == 120'000);
  BOOST_TEST(c.store.max_connections_per_host == 1024);
  BOOST_TEST(c.store.max_pages == 5);
  BOOST_TEST(c.store.max_collection_bytes == 8u * 1024 * 1024);
  BOOST_TEST(c.sync.concurrency == 4096);
  BOOST_TEST(c.sync.poll_interval.count() == 7200);
  BOOST_TEST(c.sync.drain_grace.count() == 0);
  BOOST_TEST(c.sync.watermark_overlap.count() == 14 * 86400);
  BOOST_TEST(c.sync.max_attempts == 100);
  BOOST_TEST(c.sync.retry_base.count() == 1);
  BOOST_TEST(c.sync.retry_cap.count() == 86400);
  BOOST_TEST(c.sync.shutdown_timeout.count() == 30);
  BOOST_TEST(c.log.level == "debug");
}

BOOST_AUTO_TEST_CASE(comments_and_layout) {
  config c = parse_config("\xEF\xBB\xBF# leading comment\r\n; another\r\n" + required +
                              "[database]\r\n  pool_size=2 ; why two\r\n\t[ sync ]\t\n"
                              "concurrency = 7\t# tab before the comment\n"
                              "[store]\ncollections_url = https://example.test/a#fragment\n",
                          "x.conf");
  BOOST_TEST(c.database.pool_size == 2);
  BOOST_TEST(c.sync.concurrency == 7);
  BOOST_TEST(c.store.collections_url == "https://example.test/a#fragment");  // no space before '#'
}

BOOST_AUTO_TEST_CASE(durations) {
  BOOST_TEST(parse_duration("250ms")->count() == 250);
  BOOST_TEST(parse_duration("30s")->count() == 30'000);
  BOOST_TEST(parse_duration("5m")->count() == 300'000);
  BOOST_TEST(parse_duration("2h")->count() == 7'200'000);
  BOOST_TEST(parse_duration("14d")->count() == 14LL * 86'400'000);
  BOOST_TEST(parse_duration("30")->count() == 30'000);
  BOOST_TEST(parse_duration("0")->count() == 0);
  for (const char* bad : {"", "s", "-5s", "+5s", "1.5h", "5 m", "5M", "5min", "5sec", " 5s", "5s ", "1w",
                          "0x10", "99999999999999999999", "9999999999999999d"}) {
    BOOST_TEST(!parse_duration(bad), "should reject \"" << bad << "\"");
  }
}

BOOST_AUTO_TEST_CASE(sizes) {
  for (const auto& [text, bytes] : std::vector<std::pair<std::string, std::uint64_t>>{
           {"65536", 65536}, {"100000B", 100000}, {"64KB", 65536}, {"32MB", 32u << 20}, {"2GB", 2ull << 30}}) {
    BOOST_TEST_CONTEXT(text) {
      const config c = parse_config(required + "[store]\nmax_collection_bytes = " + text + "\n", "x.conf");
      BOOST_TEST(c.store.max_collection_bytes == bytes);
    }
  }
}

BOOST_AUTO_TEST_CASE(errors_name_key_and_line) {
  struct bad_case {
    std::string text;
    std::string key;
    int line;
    std::string message;
  };
  const std::vector<bad_case> cases = {
      {required + "[store]\ncolections_url = https://x\n", "store.colections_url", 7,
       "test.conf:7: unknown key [store] colections_url (did you mean collections_url?)"},
      {required + "[store]\ndrain_grace = 5s\n", "store.drain_grace", 7,
       "test.conf:7: unknown key [store] drain_grace (it belongs in [sync])"},
      {required + "[stores]\n", "stores", 6, "test.conf:6: unknown section [stores]"},
      {required + "[database]\npool_size = 2\npool_size = 3\n", "database.pool_size", 8,
       "test.conf:8: duplicate key [database] pool_size (first set on line 7)"},
      {required + "[sync]\ndrain_grace = 30 seconds\n", "sync.drain_grace", 7,
       "test.conf:7: [sync] drain_grace = 30 seconds: is not a duration"},
      {required + "[sync]\nretry_base = 1500ms\n", "sync.retry_base", 7,
       "test.conf:7: [sync] retry_base = 1500ms: must be a whole number of seconds"},
      {required + "[database]\nstatement_timeout = 500ms\n", "database.statement_timeout", 7,
       "test.conf:7: [database] statement_timeout = 500ms: must be between 1s and 10m"},
      {required + "[sync]\nconcurrency = 0\n", "sync.concurrency", 7,
       "test.conf:7: [sync] concurrency = 0: must be between 1 and 4096"},
      {required + "[sync]\nconcurrency = 99999999999999999999\n", "sync.concurrency", 7,
       "test.conf:7: [sync] concurrency = 99999999999999999999: must be between 1 and 4096"},
      {required + "[sync]\nconcurrency = 12abc\n", "sync.concurrency", 7,
       "test.conf:7: [sync] concurrency = 12abc: is not a whole number"},
      {required + "[store]\nmax_page_size = 101\n", "store.max_page_size", 7,
       "test.conf:7: [store] max_page_size = 101: must be between 1 and 100"},
      {required + "[store]\nmax_collection_bytes = 1000\n", "store.max_collection_bytes", 7,
       "test.conf:7: [store] max_collection_bytes = 1000: must be a size from 64KB to 4096MB"},
      {required + "[store]\nmax_collection_bytes = 5GB\n", "store.max_collection_bytes", 7,
       "test.conf:7: [store] max_collection_bytes = 5GB: must be a size from 64KB to 4096MB"},
      {required + "[store]\nmax_collection_bytes = 32M\n", "store.max_collection_bytes", 7,
       "test.conf:7: [store] max_collection_bytes = 32M: must be a size from 64KB to 4096MB"},
      {required + "[store]\nproduct_types = Durable,,Game\n", "store.product_types", 7,
       "test.conf:7: [store] product_types = Durable,,Game: has an empty entry"},
      {required + "[store]\nproduct_types = Durable Game\n", "store.product_types", 7,
       "test.conf:7: [store] product_types = Durable Game: entries must be separated by commas"},
      {required + "[log]\nlevel = verbose\n", "log.level", 7,
       "test.conf:7: [log] level = verbose: must be one of debug, info, warning, error"},
      {"[database]\nurl = x\n[entra]\nclient_id = c\ntenant_id = ../evil\n", "entra.tenant_id", 5,
       "test.conf:5: [entra] tenant_id = ../evil: must be the directory (tenant) id"},
      {required + "[sync]\nretry_base = 60\nretry_cap = 30\n", "sync.retry_cap", 8,
       "test.conf:8: [sync] retry_cap (30s) must not be shorter than retry_base (1m)"},
      {required + "[sync]\nthis line has no equals sign\n", "", 7, "test.conf:7: expected `key = value`"},
      {required + "[sync\n", "", 6, "test.conf:6: a section header must look like [name]"},
      {required + "[]\n", "", 6, "test.conf:6: a section header must look like [name]"},
      {required + "= 5\n", "", 6, "test.conf:6: expected `key = value`"},
      {"url = postgresql:///x\n", "url", 1, "test.conf:1: url is outside any section"},
      {"[entra]\ntenant_id = t\nclient_id = c\n", "database.url", 0, "test.conf: [database] url is required"},
      {"[database]\nurl = x\n[entra]\nclient_id = c\n", "entra.tenant_id", 0,
       "test.conf: [entra] tenant_id is required"},
      {"[database]\nurl = x\n[entra]\ntenant_id = t\nclient_id =\n", "entra.client_id", 0,
       "test.conf: [entra] client_id is required"},
      {"", "database.url", 0, "test.conf: [database] url is required"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.message) {
      config_error e = error_of(c.text);
      BOOST_TEST(e.key() == c.key);
      BOOST_TEST(e.line() == c.line);
      BOOST_TEST(std::string(e.what()).find(c.message) == 0u, e.what());
    }
  }
}

BOOST_AUTO_TEST_CASE(database_url_is_never_echoed) {
  // The only database.url error is "required", but a syntax error on a line holding it must not leak it.
  config_error e = error_of("[database]\nurl postgresql://u:hunter2@db/x\n");
  BOOST_TEST(std::string(e.what()).find("hunter2") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(files_and_urls) {
  temp_dir dir;
  config c = parse_config(required, "x.conf");
  c.entra.client_secret_file = dir.write("secret", "s3cret~value\n");
  BOOST_CHECK_NO_THROW(validate_files_and_urls(c));
  BOOST_TEST(read_secret_file(c.entra.client_secret_file, "entra.client_secret_file") == "s3cret~value");
  BOOST_TEST(read_secret_file(dir.write("crlf", "v\r\n"), "k.k") == "v");
  BOOST_TEST(read_secret_file(dir.write("two", "v\n\n"), "k.k") == "v\n");  // only one newline is ours

  auto expect = [&](const config& bad, const std::string& key, const std::string& text) {
    try {
      validate_files_and_urls(bad);
      BOOST_FAIL("expected an error naming " << key);
    } catch (const config_error& e) {
      BOOST_TEST_MESSAGE(e.what());
      BOOST_TEST(e.key() == key);
      BOOST_TEST(std::string(e.what()).find(text) != std::string::npos, e.what());
      BOOST_TEST(std::string(e.what()).find("s3cret") == std::string::npos);
    }
  };

  config missing = c;
  missing.entra.client_secret_file = (dir.path / "nope").string();
  expect(missing, "entra.client_secret_file",
         "[entra] client_secret_file " + missing.entra.client_secret_file + ": No such file or directory");
  config empty = c;
  empty.entra.client_secret_file = dir.write("empty", "");
  expect(empty, "entra.client_secret_file", "the file is empty");
  config just_newline = c;
  just_newline.entra.client_secret_file = dir.write("newline", "\n");
  expect(just_newline, "entra.client_secret_file", "the file is empty");
  config a_dir = c;
  a_dir.entra.client_secret_file = dir.path.string();
  expect(a_dir, "entra.client_secret_file", "is a directory");
  if (geteuid() != 0) {  // root reads anything
    config unreadable = c;
    unreadable.entra.client_secret_file = dir.write("locked", "x");
    std::filesystem::permissions(unreadable.entra.client_secret_file, std::filesystem::perms::none);
    expect(unreadable, "entra.client_secret_file", "Permission denied");
  }

  config http = c;
  http.store.collections_url = "http://collections.mp.microsoft.com";
  expect(http, "store.collections_url",
         "[store] collections_url = http://collections.mp.microsoft.com: must be an https:// URL");
  http = c;
  http.store.purchase_url = "http://localhost:8080";
  expect(http, "store.purchase_url", "must be an https:// URL");
  http = c;
  http.entra.token_url = "http://login.microsoftonline.com/t/oauth2/v2.0/token";
  expect(http, "entra.token_url", "must be an https:// URL");
  for (const char* bad : {"https://", "https:///path", "https://:443", "https://u:p@host/", "https://host:0",
                          "https://host:65536", "https://host:x", "https://[::1", "https://ho st/"}) {
    config u = c;
    u.store.collections_url = bad;
    BOOST_TEST_CONTEXT(bad) { BOOST_CHECK_THROW(validate_files_and_urls(u), config_error); }
  }

  config ca = c;
  ca.store.ca_file = dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  BOOST_CHECK_NO_THROW(validate_files_and_urls(ca));
  ca.store.ca_file = dir.write("not-a-ca.pem", "hello");
  expect(ca, "store.ca_file", "contains no PEM certificate");
  ca.store.ca_file = (dir.path / "missing.pem").string();
  expect(ca, "store.ca_file", "No such file or directory");
}

BOOST_AUTO_TEST_CASE(load_from_file) {
  temp_dir dir;
  std::string path = dir.write("entitlement-syncd.conf", interface_example);
  config c = load_config(path);
  BOOST_TEST(c.source_path == path);
  BOOST_TEST(c.sync.drain_grace.count() == 30);

  std::string bad = dir.write("bad.conf", required + "[sync]\nconcurrency = 0\n");
  try {
    load_config(bad);
    BOOST_FAIL("expected an error");
  } catch (const config_error& e) {
    BOOST_TEST(std::string(e.what()).find(bad + ":7: [sync] concurrency = 0") == 0u, e.what());
  }
  BOOST_CHECK_EXCEPTION(
      load_config((dir.path / "absent.conf").string()), config_error, [](const config_error& e) {
        return std::string(e.what()).find("cannot read the config file") != std::string::npos &&
               e.key().empty();
      });
}
