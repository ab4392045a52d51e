#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

// The Prometheus registry's exact text output (the endpoint that serves it: metrics_server_test).

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ops/metrics.hpp"

namespace {

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
