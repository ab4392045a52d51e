#include "db/pg_array.hpp"

#include "db/pg_timestamp.hpp"

#include <utility>

namespace esd::db {

pg_array& pg_array::text(std::string_view v) {
  separate();
  out_ += '"';
  // Runs between the characters to escape are appended whole.
  std::size_t from = 0;
  for (auto at = v.find_first_of("\"\\"); at != std::string_view::npos; at = v.find_first_of("\"\\", at + 1)) {
    out_.append(v.substr(from, at - from));
    out_ += '\\';
    from = at;  // the character itself starts the next run
  }
  out_.append(v.substr(from));
  out_ += '"';
  return *this;
}

pg_array& pg_array::text_or_null(std::string_view v) { return v.empty() ? null() : text(v); }

pg_array& pg_array::null() {
  separate();
  out_ += "NULL";
  return *this;
}

pg_array& pg_array::integer(const std::optional<std::int64_t>& v) {
  if (!v) return null();
  separate();
  out_ += std::to_string(*v);
  return *this;
}

pg_array& pg_array::boolean(const std::optional<bool>& v) {
  if (!v) return null();
  separate();
  out_ += *v ? 't' : 'f';
  return *this;
}

pg_array& pg_array::time(const std::optional<store::store_time>& t) {
  return t ? text(to_pg_timestamptz(*t)) : null();
}

pg_array& pg_array::text_array(const std::vector<std::string>& v) { return text(to_pg_text_array(v)); }

std::string pg_array::take() {
  out_ += '}';
  std::string literal = std::move(out_);
  out_.clear();
  out_ += '{';
  return literal;
}

std::string to_pg_text_array(const std::vector<std::string>& values) {
  pg_array a;
  for (const auto& v : values) a.text(v);
  return a.take();
}

std::string to_pg_bigint_array(const std::vector<std::int64_t>& values) {
  pg_array a;
  for (auto v : values) a.integer(v);
  return a.take();
}

}  // namespace esd::db
