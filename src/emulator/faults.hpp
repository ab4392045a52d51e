// Failures injected on request, so tests can watch the daemon survive them: the next `count` requests to
// a path (optionally for one player), or `count` of them picked at random with `probability`, answer with a
// status, drop the connection, truncate the answer, send broken JSON, or never answer; or (drop_after) are
// carried out as usual, a grant granting and a consume consuming, and then lose their answer: the connection
// closes before a byte of it is sent. The page loop has its own: continuation cycles and huge pages.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace esd::emulator {

// echo: an answer (with the rule's status) that is the request body, as a misconfigured proxy or a
// debugging endpoint may send; the daemon must never pass such an answer on.
enum class fault_mode {
  status, drop, truncate, malformed, hang, drop_after, echo,
  // Page-loop faults of the collections and recurrences queries (page_faults.hpp): a 200 page whose
  // continuation token leads in a circle, A -> B -> A -> ...; and pages of `bytes` each, continued while
  // the rule has hits left.
  cycle, huge,
  // Hostile content (emulator/content_faults.hpp): the real answer, with one field made hostile.
  nul_text, bad_utf8_text, giant_text, number, bad_utf8_error,
};

struct fault_rule {
  std::string path;  // exact request path, or a prefix when it ends in '*'
  int remaining = 1;                   // hits left; the rule goes away after the last
  double probability = 1.0;            // chance that a matching request is hit (a miss costs no hit)
  fault_mode mode = fault_mode::status;
  int status = 500;
  std::optional<int> retry_after;      // Retry-After header for mode status
  std::optional<std::string> user_id;  // only requests for this player
  std::size_t bytes = 0;               // mode huge: the size of each page's answer
  // Hostile content: which field of the answer (of items[item], or of the top-level object when the answer
  // has no items), how long a giant_text is, and the value of a number.
  std::string field = "productId";
  std::size_t item = 0;
  std::size_t size = 15u << 20;
  long long value = -1;
};

class fault_plan {
 public:
  // From {"path":..,"count":..,"mode":..,"status":..,"retryAfter":..,"userId":..,"probability":..}; nullopt
  // and `error` set when the body makes no sense.
  static std::optional<fault_rule> from_json(const boost::json::value& body, std::string& error);

  void add(fault_rule rule) { rules_.push_back(std::move(rule)); }
  void clear() { rules_.clear(); }
  bool empty() const { return rules_.empty(); }

  // The first rule matching this request that hits (see probability), with one use consumed; nullopt when
  // none does.
  std::optional<fault_rule> take(std::string_view path, const std::optional<std::string>& user_id);

  boost::json::value to_json() const;

 private:
  std::vector<fault_rule> rules_;
  std::mt19937_64 rng_{std::random_device{}()};
};

std::string_view to_string(fault_mode m);

}  // namespace esd::emulator
