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

class json_fields {
 public:
  // where: how the error names the object, e.g. "items[2]"; empty for a top-level object.
  json_fields(const boost::json::object& object, std::string where);

  // The value, or nullptr if absent or null.
  const boost::json::value* find(std::string_view key) const;

  std::string text(std::string_view key);           // "" if absent
  std::string required_text(std::string_view key);  // also an error if absent or empty
  std::optional<std::int32_t> int32(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  std::optional<store_time> date(std::string_view key);
  std::optional<store_time> required_date(std::string_view key);
  std::optional<std::int64_t> timespan_micros(std::string_view key);
  std::vector<std::string> texts(std::string_view key);  // an array of strings; empty if absent
  const boost::json::object* object(std::string_view key);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void fail(std::string_view key, std::string_view problem);

 private:
  const boost::json::object& object_;
  std::string where_;
  std::string error_;
};

// A short printable excerpt of untrusted text for error messages: control characters become spaces,
// other bytes outside printable ASCII become '?', and "..." marks a cut.
std::string printable_excerpt(std::string_view s, std::size_t max_chars);
// The same, in double quotes.
std::string quoted_excerpt(std::string_view s, std::size_t max_chars = 80);

// Parses a JSON document without throwing; on failure returns nullopt and sets `error` to a sentence.
// `sp`: where the document's nodes go (the default heap, or an arena the caller keeps alive as long as the
// document).
std::optional<boost::json::value> parse_json_document(std::string_view text, std::string& error,
                                                      boost::json::storage_ptr sp = {});

}  // namespace esd::store
