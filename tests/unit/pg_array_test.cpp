// PostgreSQL array literals: every element type the writes use, and text that tries to change the
// array's shape.
#define BOOST_TEST_MODULE pg_array
#include "db/pg_array.hpp"

#include <boost/test/unit_test.hpp>

using esd::db::pg_array;
using esd::db::to_pg_bigint_array;
using esd::db::to_pg_text_array;
using esd::store::store_time;

BOOST_AUTO_TEST_CASE(an_empty_array) {
  BOOST_TEST(pg_array().take() == "{}");
  BOOST_TEST(to_pg_text_array({}) == "{}");
  BOOST_TEST(to_pg_bigint_array({}) == "{}");
}

BOOST_AUTO_TEST_CASE(text_is_always_quoted_and_escaped) {
  BOOST_TEST(to_pg_text_array({"a", "b c", "q\"x", "back\\slash", "NULL", ""}) ==
             R"({"a","b c","q\"x","back\\slash","NULL",""})");
  BOOST_TEST(to_pg_text_array({"a,b", "{x}", "}{", " padded ", "\"\\\"", "\\"}) ==
             R"({"a,b","{x}","}{"," padded ","\"\\\"","\\"})");
  // Bytes pass through untouched, multi-byte characters and controls included.
  BOOST_TEST(to_pg_text_array({"Ünïcødé ✓", "日本", "tab\there\nline"}) == "{\"Ünïcødé ✓\",\"日本\",\"tab\there\nline\"}");
  BOOST_TEST(to_pg_text_array({std::string("nul\0byte", 8)}) == std::string("{\"nul\0byte\"}", 12));
}

BOOST_AUTO_TEST_CASE(null_is_the_bare_word_and_differs_from_the_text_null) {
  pg_array a;
  a.null().text("NULL").text("").null();
  BOOST_TEST(a.take() == R"({NULL,"NULL","",NULL})");
  a.text_or_null("").text_or_null("x").text_or_null("NULL");
  BOOST_TEST(a.take() == R"({NULL,"x","NULL"})");
}

BOOST_AUTO_TEST_CASE(integers_and_booleans_are_bare) {
  BOOST_TEST(to_pg_bigint_array({1, 22, 333}) == "{1,22,333}");
  BOOST_TEST(to_pg_bigint_array({-9223372036854775807LL - 1, 0, 9223372036854775807LL}) ==
             "{-9223372036854775808,0,9223372036854775807}");
  pg_array a;
  a.integer(std::nullopt).integer(-5).boolean(true).boolean(false).boolean(std::nullopt);
  BOOST_TEST(a.take() == "{NULL,-5,t,f,NULL}");
}

BOOST_AUTO_TEST_CASE(times_are_quoted_pg_literals) {
  pg_array a;
  a.time(store_time{1'442'949'771'206'872}).time(store_time::infinity()).time(std::nullopt).time(store_time{-1});
  BOOST_TEST(a.take() ==
             R"({"2015-09-22 19:22:51.206872+00","infinity",NULL,"1969-12-31 23:59:59.999999+00"})");
}

BOOST_AUTO_TEST_CASE(a_nested_text_array_is_one_quoted_element) {
  pg_array a;
  a.text_array({"tag1", "with \"quote\"", "back\\slash"}).text_array({}).text_array({""});
  // The inner literal's escapes are escaped again by the outer one.
  BOOST_TEST(a.take() == R"({"{\"tag1\",\"with \\\"quote\\\"\",\"back\\\\slash\"}","{}","{\"\"}"})");
}

BOOST_AUTO_TEST_CASE(take_starts_over) {
  pg_array a;
  a.text("one").integer(2);
  BOOST_TEST(a.take() == R"({"one",2})");
  BOOST_TEST(a.take() == "{}");
  a.text("three");
  BOOST_TEST(a.take() == R"({"three"})");
}
