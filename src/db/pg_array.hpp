// PostgreSQL array literals ('{"a",NULL,"b"}'): many values bound as one parameter ($1::text[]) and
// unnested by the server, so a statement's text and plan stay the same however many rows it carries.
//
// Every text element is quoted, with '"' and '\' escaped, so no content (commas, braces, spaces, the
// word NULL, an empty string) can change the array's shape; a NULL element is the bare word NULL.
// Bytes pass through as they are: the database checks the encoding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store_date.hpp"

namespace esd::db {

// Builds one array literal, element by element.
class pg_array {
 public:
  pg_array& text(std::string_view v);
  pg_array& text_or_null(std::string_view v);  // an empty string is NULL
  pg_array& null();
  pg_array& integer(const std::optional<std::int64_t>& v);
  pg_array& boolean(const std::optional<bool>& v);
  pg_array& time(const std::optional<store::store_time>& t);  // as db::to_pg_timestamptz writes it
  // One element holding a whole text[] literal; the statement casts it (element::text[]), because a
  // multidimensional array cannot hold rows of different lengths.
  pg_array& text_array(const std::vector<std::string>& v);

  // The literal so far; the builder starts over, empty.
  std::string take();

 private:
  void separate() {
    if (out_.size() > 1) out_ += ',';
  }
  std::string out_ = "{";
};

std::string to_pg_text_array(const std::vector<std::string>& values);
std::string to_pg_bigint_array(const std::vector<std::int64_t>& values);

}  // namespace esd::db
