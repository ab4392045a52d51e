#define BOOST_TEST_MODULE db_error
#include <boost/test/unit_test.hpp>

#include <pqxx/except>

#include <stdexcept>

#include "db/db_error.hpp"

using esd::db::describe_error;

BOOST_AUTO_TEST_CASE(a_refused_row_is_never_quoted) {
  const pqxx::check_violation e(
      "ERROR:  new row for relation \"user_keys\" violates check constraint \"user_keys_check\"\n"
      "DETAIL:  Failing row contains (player-1, eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-key, null).\n",
      "INSERT INTO entitlement_sync.user_keys ...", "23514");
  const std::string d = describe_error(e);
  BOOST_TEST(d.find("SQLSTATE 23514") == 0u, d);
  BOOST_TEST(d.find("violates check constraint") != std::string::npos, d);
  BOOST_TEST(d.find("eyJ") == std::string::npos, d);
  BOOST_TEST(d.find("Failing row") == std::string::npos, d);
  BOOST_TEST(d.find("INSERT") == std::string::npos, d);
}

BOOST_AUTO_TEST_CASE(other_errors_keep_their_first_line_bounded_and_printable) {
  const std::runtime_error e(std::string("connection lost\x1b[2J") + std::string(1000, 'x') + "\nsecond line");
  const std::string d = describe_error(e);
  BOOST_TEST(d.find("connection lost") == 0u, d);
  BOOST_TEST(d.find('\x1b') == std::string::npos);
  BOOST_TEST(d.find("second line") == std::string::npos);
  BOOST_TEST(d.size() <= 303u);
}
