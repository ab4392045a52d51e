#include "ops/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string_view>

namespace esd::ops {

namespace {

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;  // "__" names are reserved for Prometheus
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Prometheus parses Go's float syntax: integers plainly, otherwise the shortest text that reads back
// to the same double.
std::string format_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::to_chars_result r;
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, v);
  }
  return std::string(buf, r.ptr);
}

void append_escaped(std::string& out, std::string_view text, bool escape_quotes) {
  for (const char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        out += escape_quotes ? "\\\"" : "\"";
        break;
      default:
        out += c;
    }
  }
}

// `{a="1",b="2"}` (with an optional extra label last, for histogram buckets), or nothing.
void append_labels(std::string& out, const labels& l, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (l.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  const auto one = [&](std::string_view name, std::string_view value) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    append_escaped(out, value, true);
    out += '"';
  };
  for (const auto& [name, value] : l) one(name, value);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out += '}';
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix, const labels& l,
                   double value, std::string_view extra_name = {}, std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  append_labels(out, l, extra_name, extra_value);
  out += ' ';
  out += format_number(value);
  out += '\n';
}

const char* kind_name(int k) {
  switch (k) {
    case 0:
      return "counter";
    case 1:
      return "gauge";
    default:
      return "histogram";
  }
}

}  // namespace

void metrics::describe_counter(std::string name, std::string help) {
  describe(std::move(name), std::move(help), kind::counter, {});
}

void metrics::describe_gauge(std::string name, std::string help) {
  describe(std::move(name), std::move(help), kind::gauge, {});
}

void metrics::describe_histogram(std::string name, std::string help, std::vector<double> upper_bounds) {
  std::erase_if(upper_bounds, [](double b) { return std::isinf(b) && b > 0; });  // +Inf is implicit
  for (const double b : upper_bounds) {
    if (std::isnan(b) || std::isinf(b)) {
      throw std::logic_error("metric " + name + ": histogram bucket bounds must be finite numbers");
    }
  }
  std::sort(upper_bounds.begin(), upper_bounds.end());
  upper_bounds.erase(std::unique(upper_bounds.begin(), upper_bounds.end()), upper_bounds.end());
  describe(std::move(name), std::move(help), kind::histogram, std::move(upper_bounds));
}

void metrics::describe(std::string name, std::string help, kind type, std::vector<double> bounds) {
  if (!valid_metric_name(name)) throw std::logic_error("metric name '" + name + "' is not a valid name");
  std::lock_guard lock(mutex_);
  if (const auto it = families_.find(name); it != families_.end()) {
    if (it->second.type != type || it->second.bounds != bounds) {
      throw std::logic_error("metric " + name + " was already described as a " +
                             kind_name(static_cast<int>(it->second.type)) +
                             (it->second.type == kind::histogram ? " with other buckets" : ""));
    }
    return;
  }
  families_.emplace(std::move(name), family{type, std::move(help), std::move(bounds), {}});
}

metrics::series& metrics::find_series(const std::string& name, const labels& l, kind expected,
                                      const char* operation) {
  const auto it = families_.find(name);
  if (it == families_.end()) throw std::logic_error("metric " + name + " is used but was never described");
  family& f = it->second;
  if (f.type != expected && !(expected == kind::counter && f.type == kind::gauge)) {
    throw std::logic_error(std::string(operation) + " on metric " + name + ", which is a " +
                           kind_name(static_cast<int>(f.type)));
  }
  labels key = l;
  std::sort(key.begin(), key.end());
  for (std::size_t i = 0; i < key.size(); ++i) {
    const auto& label = key[i].first;
    if (!valid_label_name(label) || (f.type == kind::histogram && label == "le")) {
      throw std::logic_error("metric " + name + ": '" + label + "' is not a valid label name");
    }
    if (i > 0 && key[i - 1].first == label) {
      throw std::logic_error("metric " + name + ": label '" + label + "' is given twice");
    }
  }
  auto [pos, inserted] = f.by_labels.try_emplace(std::move(key));
  if (inserted && f.type == kind::histogram) pos->second.buckets.assign(f.bounds.size() + 1, 0);
  return pos->second;
}

void metrics::inc(const std::string& name, const labels& l, double by) {
  std::lock_guard lock(mutex_);
  series& s = find_series(name, l, kind::counter, "inc");
  if (by < 0 && families_.find(name)->second.type == kind::counter) {
    throw std::logic_error("metric " + name + " is a counter and cannot decrease");
  }
  s.value += by;
}

void metrics::set(const std::string& name, double value, const labels& l) {
  std::lock_guard lock(mutex_);
  find_series(name, l, kind::gauge, "set").value = value;
}

void metrics::observe(const std::string& name, double value, const labels& l) {
  std::lock_guard lock(mutex_);
  series& s = find_series(name, l, kind::histogram, "observe");
  const auto& bounds = families_.find(name)->second.bounds;
  // NaN belongs in no finite bucket; it only lands in +Inf (and poisons _sum, as in the Go client).
  const std::size_t bucket =
      std::isnan(value)
          ? bounds.size()
          : static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  ++s.buckets[bucket];
  s.sum += value;
  ++s.count;
}

void metrics::set_collector(std::function<void(metrics&)> collector) {
  std::lock_guard lock(mutex_);
  collector_ = std::move(collector);
}

std::string metrics::render() {
  std::function<void(metrics&)> collector;
  {
    std::lock_guard lock(mutex_);
    collector = collector_;
  }
  if (collector) collector(*this);  // unlocked: it calls set()

  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, f] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += kind_name(static_cast<int>(f.type));
    out += '\n';
    for (const auto& [l, s] : f.by_labels) {
      if (f.type != kind::histogram) {
        append_sample(out, name, "", l, s.value);
        continue;
      }
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < s.buckets.size(); ++i) {
        cumulative += s.buckets[i];
        const std::string le = i < f.bounds.size() ? format_number(f.bounds[i]) : "+Inf";
        append_sample(out, name, "_bucket", l, static_cast<double>(cumulative), "le", le);
      }
      append_sample(out, name, "_sum", l, s.sum);
      append_sample(out, name, "_count", l, static_cast<double>(s.count));
    }
  }
  return out;
}

}  // namespace esd::ops
