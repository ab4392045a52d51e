// store_time as PostgreSQL timestamptz text, both ways, including the forms only PostgreSQL prints.
#define BOOST_TEST_MODULE pg_timestamp
#include "db/pg_timestamp.hpp"

#include <boost/test/unit_test.hpp>

using esd::db::from_pg_timestamptz;
using esd::db::to_pg_timestamptz;
using esd::store::parse_store_date;
using esd::store::store_time;

namespace {

constexpr std::int64_t sept_22_2015 = 1'442'949'771'206'872;  // 2015-09-22T19:22:51.206872Z

}  // namespace

BOOST_AUTO_TEST_CASE(literals_keep_every_microsecond) {
  BOOST_TEST(to_pg_timestamptz(store_time{sept_22_2015}) == "2015-09-22 19:22:51.206872+00");
  BOOST_TEST(to_pg_timestamptz(store_time{0}) == "1970-01-01 00:00:00.000000+00");
  BOOST_TEST(to_pg_timestamptz({-1}) == "1969-12-31 23:59:59.999999+00");
  BOOST_TEST(to_pg_timestamptz(store_time::infinity()) == "infinity");
  BOOST_TEST(from_pg_timestamptz("infinity")->is_infinity());
}

BOOST_AUTO_TEST_CASE(postgres_output_forms) {
  const std::int64_t t = sept_22_2015;
  BOOST_TEST(from_pg_timestamptz("2015-09-22 19:22:51.206872+00")->micros == t);
  BOOST_TEST(from_pg_timestamptz("2015-09-23 00:52:51.206872+05:30")->micros == t);
  BOOST_TEST(from_pg_timestamptz("2015-09-22 12:22:51.206872-07")->micros == t);
  BOOST_TEST(from_pg_timestamptz("2015-09-22 19:22:51.2+00")->micros == t - 6872);
  BOOST_TEST(from_pg_timestamptz("2015-09-22 19:22:51+00")->micros == t - 206872);
  BOOST_TEST(from_pg_timestamptz("1883-11-18 11:59:59-07:52:58").has_value());  // local mean time
  BOOST_TEST(from_pg_timestamptz("0001-12-31 23:00:00+00 BC")->micros ==
             parse_store_date("0001-01-01T00:00:00Z")->micros - 3600LL * 1'000'000);
  for (std::string_view bad :
       {"", "-infinity", "2015-09-22T19:22:51+00", "2015-09-22 19:22:51", "2015-09-22 19:22:51+",
        "2015-09-22 19:22:51.1234567+00", "2015-02-30 00:00:00+00", "2015-09-22 19:22:51+00 "}) {
    BOOST_TEST(!from_pg_timestamptz(bad), "should reject: \"" << bad << "\"");
  }
}

BOOST_AUTO_TEST_CASE(before_year_one_in_pg_form) {
  // 0001-01-01T00:00+05:00 is 0000-12-31T19:00Z, which PostgreSQL calls 1 BC.
  store_time t = *parse_store_date("0001-01-01T00:00:00+05:00");
  BOOST_TEST(to_pg_timestamptz(t) == "0001-12-31 19:00:00.000000+00 BC");
  BOOST_TEST(from_pg_timestamptz(to_pg_timestamptz(t))->micros == t.micros);
  // 1 BC is astronomical year 0, a leap year; 2 BC (year -1) is not.
  BOOST_TEST(from_pg_timestamptz("0001-02-29 00:00:00+00 BC").has_value());
  BOOST_TEST(!from_pg_timestamptz("0002-02-29 00:00:00+00 BC").has_value());
}
