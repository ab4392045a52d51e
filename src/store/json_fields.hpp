// Typed, non-throwing reads of the fields of one JSON object from a Store or Entra answer.
//
// The Store's answers are input we do not control: a field may be missing, null, or of the wrong type.
// Each read returns an empty value on any of those and, for a wrong type or a malformed value, records
// the first problem as a sentence naming the field ("items[2]: modifiedDate is not a date: \"...\"").
// JSON null counts as absent, as .NET serializers write null for unset optional fields.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store_date.hpp"

namespace esd::store {

// Bounds on the Store's text, in bytes (README, "What is recorded"). Ids, codes and states are compared,
// indexed (product_id, item_id, recurrence_id) or shown; nothing the Store documents comes near the bound,
// and with a 256-character user id a row stays inside PostgreSQL's btree limit.
inline constexpr std::size_t max_id_bytes = 512;
// Free text the developer or the Store writes: offer tokens, ticket references, tags, fulfilment data.
inline constexpr std::size_t max_text_bytes = 16 * 1024;
// Elements of one list of texts (tags, fulfillmentData, satisfiedByProductIds).
inline constexpr std::size_t max_list_elements = 256;

class json_fields {
 public:
  // where: how the error names the object, e.g. "items[2]"; empty for a top-level object.
  json_fields(const boost::json::object& object, std::string where);

  // The value, or nullptr if absent or null.
  const boost::json::value* find(std::string_view key) const;

  // Text PostgreSQL cannot store (a NUL) or longer than max_bytes is refused: "" and an error naming the
  // field. (Boost.JSON refuses a body whose strings are not UTF-8, so every string read here is UTF-8.)
  std::string text(std::string_view key, std::size_t max_bytes = max_text_bytes);  // "" if absent
  // Also an error if absent or empty.
  std::string required_text(std::string_view key, std::size_t max_bytes = max_text_bytes);
  std::optional<std::int32_t> int32(std::string_view key);
  std::optional<std::int32_t> non_negative_int32(std::string_view key);  // a count: negative is refused
  std::optional<bool> boolean(std::string_view key);
  std::optional<store_time> date(std::string_view key);
  std::optional<store_time> required_date(std::string_view key);
  std::optional<std::int64_t> timespan_micros(std::string_view key);
  // An array of strings, each checked as text(key, max_bytes), at most max_list_elements; empty if absent.
  std::vector<std::string> texts(std::string_view key, std::size_t max_bytes = max_text_bytes);
  const boost::json::object* object(std::string_view key);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void fail(std::string_view key, std::string_view problem);
  // The first problem was a value refused by its bounds (text PostgreSQL cannot store, too long, a number
  // out of range), not an answer of the wrong shape: the object is still well formed.
  bool value_refused() const { return value_refused_; }
  void refuse(std::string_view key, std::string_view problem);  // fail, for a value refused by its bounds

 private:
  bool text_refused(std::string_view key, std::string_view value, std::size_t max_bytes);

  const boost::json::object& object_;
  std::string where_;
  std::string error_;
  bool value_refused_ = false;
};

// Untrusted text quoted in an error message: its excerpt(), in double quotes.
std::string quoted_excerpt(std::string_view s, std::size_t max_bytes = 80);

// Parses a JSON document without throwing; on failure returns nullopt and sets `error` to a sentence.
// `sp`: where the document's nodes go (the default heap, or an arena the caller keeps alive as long as the
// document).
std::optional<boost::json::value> parse_json_document(std::string_view text, std::string& error,
                                                      boost::json::storage_ptr sp = {});

}  // namespace esd::store
