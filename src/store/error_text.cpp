#include "store/error_text.hpp"

#include <algorithm>

namespace esd::store {
namespace {

// The length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when there is none.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else
    return 0;
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

void append_escape(std::string& out, unsigned char c) {
  static constexpr char hex[] = "0123456789abcdef";
  switch (c) {
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    default:
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
  }
}

// Escapes text into out, stopping before a piece that would take out past `limit` bytes; returns whether
// all of text went in.
bool escape_into(std::string& out, std::string_view text, std::size_t limit) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t n = c >= 0x80 ? utf8_length(text, i) : (c >= 0x20 && c < 0x7f) ? 1 : 0;
    if (out.size() + (n ? n : 4) > limit) return false;
    if (n) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      append_escape(out, c);
      ++i;
    }
  }
  return true;
}

// escape_control within `limit` bytes; when it does not fit, as much as fits before `mark`, then the mark.
std::string escaped_within(std::string_view text, std::size_t limit, std::string_view mark) {
  std::string out;
  out.reserve(std::min(text.size(), limit));
  if (text.size() <= limit && escape_into(out, text, limit)) return out;
  out.clear();
  escape_into(out, text, limit > mark.size() ? limit - mark.size() : 0);
  out += mark;
  return out;
}

}  // namespace

std::string escape_control(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  escape_into(out, text, std::string::npos);
  return out;
}

std::string bounded_error(std::string_view text) { return escaped_within(text, max_error_bytes, " [cut]"); }

std::string excerpt(std::string_view text, std::size_t max_bytes) {
  std::string folded;
  folded.reserve(std::min(text.size(), max_bytes));
  for (char ch : text) {
    const bool blank = ch == '\n' || ch == '\r' || ch == '\t' || ch == ' ';
    if (!blank) {
      folded += ch;
    } else if (!folded.empty() && folded.back() != ' ') {
      folded += ' ';
    }
    if (folded.size() > 4 * max_bytes) break;  // enough to fill max_bytes whatever is escaped
  }
  while (!folded.empty() && folded.back() == ' ') folded.pop_back();
  return escaped_within(folded, max_bytes, "...");
}

}  // namespace esd::store
