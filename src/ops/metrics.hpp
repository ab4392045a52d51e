// The daemon's Prometheus registry: counters, gauges and histograms with labels, rendered in the text
// exposition format 0.0.4 for the /metrics endpoint (see metrics_server.hpp).
//
// Families are declared once with describe_*; using a name that was never described is a programming error
// (std::logic_error naming it), so a typo cannot silently create a series nobody scrapes. Updates may come
// from the event loop and from the database worker threads: one mutex guards the maps (updates are rare
// next to the network work they count). Output is stable: families sorted by name, series by labels.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace esd::ops {

// Label pairs, e.g. {{"reason", "dead_key"}}. Order does not matter: a series is identified by its labels
// sorted by name.
using labels = std::vector<std::pair<std::string, std::string>>;

class metrics {
 public:
  // Declares a family once (HELP/TYPE); safe to call again with the same name and type.
  void describe_counter(std::string name, std::string help);
  void describe_gauge(std::string name, std::string help);
  // upper_bounds: the finite bucket bounds (sorted here; a +Inf bucket is always added).
  void describe_histogram(std::string name, std::string help, std::vector<double> upper_bounds);

  // Counters only go up (a negative `by` is a logic_error); gauges may go either way.
  void inc(const std::string& name, const labels& l = {}, double by = 1);
  void set(const std::string& name, double value, const labels& l = {});      // gauges
  void observe(const std::string& name, double value, const labels& l = {});  // histograms

  // Gauges computed at scrape time (e.g. from a cached database query result): called by render() before
  // the registry is locked, so the collector may call set()/inc(). Replaces any earlier collector.
  void set_collector(std::function<void(metrics&)> collector);

  // Prometheus text format 0.0.4. Exceptions from the collector propagate.
  std::string render();

 private:
  enum class kind { counter, gauge, histogram };
  struct series {
    double value = 0;                    // counter, gauge
    std::vector<std::uint64_t> buckets;  // histogram: per bucket (not cumulative), last is +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  struct family {
    kind type;
    std::string help;
    std::vector<double> bounds;  // histogram, finite, ascending
    std::map<labels, series> by_labels;
  };

  void describe(std::string name, std::string help, kind type, std::vector<double> bounds);
  // Requires mutex_ held.
  series& find_series(const std::string& name, const labels& l, kind expected, const char* operation);

  std::mutex mutex_;
  std::map<std::string, family, std::less<>> families_;
  std::function<void(metrics&)> collector_;
};

}  // namespace esd::ops
