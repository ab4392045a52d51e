#define BOOST_TEST_MODULE error_text
#include "store/error_text.hpp"

#include <boost/test/unit_test.hpp>

#include "ops/log.hpp"

// The one escaping of text from outside for the journal and the database, and the bound on an error line.

using namespace esd::store;

namespace {

bool raw_control(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(control_characters_are_escaped) {
  BOOST_TEST(escape_control("plain text, \"quoted\" and a \\ backslash") ==
             "plain text, \"quoted\" and a \\ backslash");
  BOOST_TEST(escape_control("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m");
  BOOST_TEST(escape_control(std::string("a\0b\x07"
                                        "c\x7f",
                                        6)) == "a\\x00b\\x07c\\x7f");
  BOOST_TEST(escape_control("one\ntwo\r\tthree") == "one\\ntwo\\r\\tthree");
}

BOOST_AUTO_TEST_CASE(utf8_is_kept_and_bytes_that_are_not_utf8_are_escaped) {
  BOOST_TEST(escape_control("Müller 日本 😀") == "Müller 日本 😀");
  BOOST_TEST(escape_control("\xff\xfe") == "\\xff\\xfe");
  BOOST_TEST(escape_control("a\x80z") == "a\\x80z");                         // a lone continuation byte
  BOOST_TEST(escape_control("a\xC3(") == "a\\xc3(");                         // a sequence cut short
  BOOST_TEST(escape_control("\xC0\xAF") == "\\xc0\\xaf");                    // an overlong '/'
  BOOST_TEST(escape_control("\xED\xA0\x80") == "\\xed\\xa0\\x80");           // a UTF-16 surrogate
  BOOST_TEST(escape_control("\xF4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  BOOST_TEST(escape_control("end\xE6\x97") == "end\\xe6\\x97");              // cut at the end of the text
}

BOOST_AUTO_TEST_CASE(an_error_line_is_bounded_and_never_cut_inside_a_character_or_escape) {
  BOOST_TEST(bounded_error("short") == "short");
  const std::string exact(max_error_bytes, 'a');
  BOOST_TEST(bounded_error(exact) == exact);

  const std::string huge(15u << 20, 'x');
  const auto cut = bounded_error(huge);
  BOOST_TEST(cut.size() <= max_error_bytes);
  BOOST_TEST(cut.ends_with(" [cut]"));

  // Multi-byte characters and escapes across the bound: the result is whole characters and whole escapes.
  for (std::size_t shift = 0; shift < 8; ++shift) {
    std::string text(shift, 'a');
    while (text.size() < 2 * max_error_bytes) text += "é\x1b日\xff";
    const auto b = bounded_error(text);
    BOOST_TEST_CONTEXT("shift " << shift) {
      BOOST_TEST(b.size() <= max_error_bytes);
      BOOST_TEST(!raw_control(b));
      BOOST_TEST(escape_control(b) == b);  // nothing left to escape: valid UTF-8, no control characters
      const auto body = b.substr(0, b.size() - 6);
      BOOST_TEST(!(body.ends_with("\\") || body.ends_with("\\x") || body.ends_with("\\x1")));
    }
  }
  // Escaping can lengthen a short text past the bound: it is still cut.
  const std::string controls(max_error_bytes - 10, '\x07');
  BOOST_TEST(bounded_error(controls).size() <= max_error_bytes);
}

BOOST_AUTO_TEST_CASE(an_excerpt_folds_line_breaks_escapes_the_rest_and_marks_its_cut) {
  BOOST_TEST(excerpt("  one\r\n\ttwo  three \n", 80) == "one two three");
  BOOST_TEST(excerpt("a\x1b[31mb\x7f", 80) == "a\\x1b[31mb\\x7f");
  BOOST_TEST(excerpt("Müller 日本", 80) == "Müller 日本");
  BOOST_TEST(excerpt(std::string(80, 'z'), 80) == std::string(80, 'z'));
  BOOST_TEST(excerpt(std::string(81, 'z'), 80) == std::string(77, 'z') + "...");
  // The cut falls before a character or an escape that would not fit whole.
  BOOST_TEST(excerpt(std::string(76, 'z') + "日本", 80) == std::string(76, 'z') + "...");
  BOOST_TEST(excerpt(std::string(75, 'z') + "\x01\x02", 80) == std::string(75, 'z') + "...");
  // A huge text is not copied whole to make a short excerpt of it, and the result is still bounded.
  const std::string huge(8u << 20, '\x07');
  BOOST_TEST(excerpt(huge, 300).size() <= 300u);
  BOOST_TEST(!raw_control(excerpt(huge, 300)));
}

BOOST_AUTO_TEST_CASE(log_fields_carry_no_raw_control_characters) {
  const auto f = esd::log::field("reason", "bad \x1b[2J\x07 answer\n" + std::string(1, '\0'));
  BOOST_TEST(!raw_control(f));
  BOOST_TEST(f == "reason=\"bad \\\\x1b[2J\\\\x07 answer\\\\n\\\\x00\"");
  BOOST_TEST(esd::log::field("user", "p\x1b") == "user=p\\x1b");
}
