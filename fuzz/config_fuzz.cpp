// Fuzzes the configuration parser (src/config/config.hpp): parse_config on the input as a file, and
// parse_duration on the input's first line.
//
// Invariants checked (each is promised by config.hpp or config_values.hpp):
// - config_error is the only exception parse_config throws; anything else aborts;
// - a config_error has a message without control characters (values and keys are shown through a
//   printable excerpt) and a line number that is 0 or a line of the input;
// - a parsed config has the required keys, keeps every checked number within the range config.hpp
//   documents, has retry_cap >= retry_base, and a product type list of distinct entries without
//   whitespace;
// - parse_duration never yields a negative duration, and describe_duration (how messages show a
//   duration, in the config file's syntax) parses back to the same duration.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/config_values.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace esd::config;

template <typename Duration>
bool within(Duration d, millis lo, millis hi) {
  return d >= lo && d <= hi;
}

void check_config(const config& c) {
  using namespace std::chrono_literals;
  FUZZ_CHECK(c.source_path == "fuzz.conf");
  FUZZ_CHECK(!c.database.url.empty());
  FUZZ_CHECK(!c.entra.tenant_id.empty());
  FUZZ_CHECK(!c.entra.client_id.empty());
  FUZZ_CHECK(std::all_of(c.entra.tenant_id.begin(), c.entra.tenant_id.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '.';
  }));

  FUZZ_CHECK(c.database.pool_size >= 1 && c.database.pool_size <= 64);
  FUZZ_CHECK(within(c.database.statement_timeout, 1s, 10min));
  FUZZ_CHECK(c.store.max_page_size >= 1 && c.store.max_page_size <= 100);
  FUZZ_CHECK(c.store.max_connections_per_host >= 1 && c.store.max_connections_per_host <= 1024);
  FUZZ_CHECK(c.sync.concurrency >= 1 && c.sync.concurrency <= 4096);
  FUZZ_CHECK(c.sync.max_attempts >= 1 && c.sync.max_attempts <= 100);
  FUZZ_CHECK(c.keys.sweep_batch >= 1 && c.keys.sweep_batch <= 10000);
  FUZZ_CHECK(c.sync.retry_cap >= c.sync.retry_base);
  FUZZ_CHECK(c.sync.retry_base >= 1s);

  FUZZ_CHECK(!c.store.product_types.empty());
  for (std::size_t i = 0; i < c.store.product_types.size(); ++i) {
    const std::string& t = c.store.product_types[i];
    FUZZ_CHECK(!t.empty());
    FUZZ_CHECK(t.find_first_of(" \t,") == std::string::npos);
    FUZZ_CHECK(std::find(c.store.product_types.begin() + i + 1, c.store.product_types.end(), t) ==
               c.store.product_types.end());
  }
  FUZZ_CHECK(c.log.level == "debug" || c.log.level == "info" || c.log.level == "warning" || c.log.level == "error");
  FUZZ_CHECK(!c.effective_token_url().empty());
}

void check_duration(const std::string& text) {
  auto d = parse_duration(text);
  if (!d) return;
  FUZZ_CHECK(d->count() >= 0);
  const std::string shown = describe_duration(*d);
  auto back = parse_duration(shown);
  FUZZ_CHECK_MSG(back && *back == *d, shown);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto lines = std::count(text.begin(), text.end(), '\n') + 1;

  try {
    config c = parse_config(text, "fuzz.conf");
    check_config(c);
  } catch (const config_error& e) {
    const std::string_view what = e.what();
    FUZZ_CHECK(!what.empty());
    FUZZ_CHECK_MSG(!esd::fuzz::has_control_char(what), what);
    FUZZ_CHECK(e.line() >= 0 && e.line() <= lines);
  } catch (const std::exception& e) {
    esd::fuzz::invariant_failed("parse_config threw something other than config_error", __FILE__, __LINE__,
                                e.what());
  } catch (...) {
    esd::fuzz::invariant_failed("parse_config threw a non-std::exception", __FILE__, __LINE__, {});
  }

  check_duration(text.substr(0, text.find('\n')));
  return 0;
}
