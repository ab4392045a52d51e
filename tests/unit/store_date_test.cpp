#define BOOST_TEST_MODULE store_date
#include "store/store_date.hpp"

#include "db/pg_timestamp.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

// Lets BOOST_TEST print the values it compares (found by argument-dependent lookup).
namespace esd::store {
std::ostream& boost_test_print_type(std::ostream& os, const store_time& t) {
  return os << format_store_date(t);
}
std::ostream& boost_test_print_type(std::ostream& os, const std::optional<store_time>& t) {
  return t ? os << format_store_date(*t) : os << "nullopt";
}
}  // namespace esd::store

namespace json = boost::json;
using esd::store::format_store_date;
using esd::store::format_utc;
using esd::db::from_pg_timestamptz;
using esd::store::parse_store_date;
using esd::store::parse_timespan_micros;
using esd::store::store_time;
using esd::db::to_pg_timestamptz;

namespace {

// The expected value computed by the C library rather than by the code under test.
std::int64_t utc_micros(int y, int mo, int d, int h, int mi, int s, std::int64_t frac_micros = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<std::int64_t>(timegm(&tm)) * 1'000'000 + frac_micros;
}

std::int64_t micros_of(std::string_view text) {
  auto t = parse_store_date(text);
  BOOST_TEST_REQUIRE(t.has_value(), "should parse: " << text);
  return t->micros;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void collect_strings(const json::value& v, std::vector<std::string>& out) {
  if (v.is_string()) out.emplace_back(v.get_string());
  if (v.is_array())
    for (const auto& e : v.get_array()) collect_strings(e, out);
  if (v.is_object())
    for (const auto& kv : v.get_object()) collect_strings(kv.value(), out);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "YYYY-MM-D…T…" or the WCF form: anything a reader would take for a date, valid or not.
bool looks_like_date(std::string_view s) {
  if (s.starts_with("/Date(") || s.starts_with("\\/Date(")) return true;
  if (s.size() < 11 || !std::all_of(s.begin(), s.begin() + 4, is_digit) || s[4] != '-') return false;
  auto t = s.find('T');
  return t != std::string_view::npos && t <= 11;
}

// "09:43:52.8580690", "1.02:03:04": digits, colons, dots and a sign only, with two colons.
bool looks_like_timespan(std::string_view s) {
  return !s.empty() && std::count(s.begin(), s.end(), ':') == 2 &&
         std::all_of(s.begin(), s.end(),
                     [](char c) { return is_digit(c) || c == ':' || c == '.' || c == '-'; });
}

// The fixtures' invalid dates, listed by hand from the README (the clawback v1 doc's typos).
const std::set<std::string, std::less<>> known_invalid = {
    "2021-06-142T23:57:51.1415104+00:00",
    "2021-06-152T23:57:51.1415104+00:00",
    "2021-06-162T10:05:35.9634676+00:00",
};

}  // namespace

BOOST_AUTO_TEST_CASE(every_date_in_every_fixture) {
  int valid = 0, invalid = 0, timespans = 0;
  for (const auto& entry : std::filesystem::directory_iterator(ESD_FIXTURES_DIR)) {
    if (entry.path().extension() != ".json") continue;
    std::string text = read_file(entry.path());
    std::vector<std::string> strings;
    json::error_code ec;
    json::value v = json::parse(text, ec);
    BOOST_TEST_REQUIRE(!ec, entry.path().filename() << " is JSON");
    collect_strings(v, strings);
    for (const auto& s : strings) {
      BOOST_TEST_CONTEXT(entry.path().filename() << ": " << s) {
        if (looks_like_timespan(s)) {
          BOOST_TEST(parse_timespan_micros(s).has_value());
          ++timespans;
        } else if (looks_like_date(s) && known_invalid.contains(s)) {
          BOOST_TEST(!parse_store_date(s).has_value());
          ++invalid;
        } else if (looks_like_date(s)) {
          auto t = parse_store_date(s);
          BOOST_TEST_REQUIRE(t.has_value());
          BOOST_TEST(parse_store_date(format_store_date(*t)) == t);
          BOOST_TEST(from_pg_timestamptz(to_pg_timestamptz(*t)) == t);
          ++valid;
        }
      }
    }
  }
  // Guards against the walk silently finding nothing (a wrong fixtures path, a broken classifier).
  BOOST_TEST(valid >= 50);
  BOOST_TEST(invalid == 4);  // the clawback v1 doc: "2021-06-142T", "-152T", and "-162T" twice
  BOOST_TEST(timespans >= 1);
}

BOOST_AUTO_TEST_CASE(clawback_invalid_days_rejected) {
  BOOST_TEST(!parse_store_date("2021-06-142T23:57:51.1415104+00:00"));
  BOOST_TEST(!parse_store_date("2021-06-152T23:57:51.1415104+00:00"));
  BOOST_TEST(!parse_store_date("2021-06-162T10:05:35.9634676+00:00"));
}

BOOST_AUTO_TEST_CASE(exact_micros_and_truncation) {
  // 7th digit 4 would round 206872.4 either way; use a 7th digit that rounding would carry.
  BOOST_TEST(micros_of("2015-09-22T19:22:51.2068724+00:00") == utc_micros(2015, 9, 22, 19, 22, 51, 206872));
  BOOST_TEST(micros_of("2015-09-22T19:22:51.2068729+00:00") == utc_micros(2015, 9, 22, 19, 22, 51, 206872));
  BOOST_TEST(micros_of("2015-09-22T19:22:51.9999999Z") == utc_micros(2015, 9, 22, 19, 22, 51, 999999));
}

BOOST_AUTO_TEST_CASE(zero_to_seven_fraction_digits) {
  const std::int64_t base = utc_micros(2021, 7, 26, 22, 35, 29);
  BOOST_TEST(micros_of("2021-07-26T22:35:29+00:00") == base);
  BOOST_TEST(micros_of("2021-07-26T22:35:29.5+00:00") == base + 500000);
  BOOST_TEST(micros_of("2021-07-26T22:35:29.54+00:00") == base + 540000);
  BOOST_TEST(micros_of("2021-07-26T22:35:29.543+00:00") == base + 543000);
  BOOST_TEST(micros_of("2021-07-26T22:35:29.5432+00:00") == base + 543200);
  BOOST_TEST(micros_of("2021-07-26T22:35:29.54321+00:00") == base + 543210);
  BOOST_TEST(micros_of("2021-07-26T22:35:29.543219+00:00") == base + 543219);
  BOOST_TEST(micros_of("2021-07-26T22:35:29.5432198+00:00") == base + 543219);
  BOOST_TEST(!parse_store_date("2021-07-26T22:35:29.54321987+00:00"));  // 8 digits: not a .NET form
  BOOST_TEST(!parse_store_date("2021-07-26T22:35:29.+00:00"));
}

BOOST_AUTO_TEST_CASE(zones) {
  const std::int64_t utc = utc_micros(2022, 12, 9, 2, 13, 0);
  BOOST_TEST(micros_of("2022-12-09T02:13:00Z") == utc);
  BOOST_TEST(micros_of("2022-12-09T02:13:00+00:00") == utc);
  BOOST_TEST(micros_of("2022-12-08T18:13:00-08:00") == utc);
  BOOST_TEST(micros_of("2022-12-09T07:43:00+05:30") == utc);
  BOOST_TEST(micros_of("2022-12-09T07:43:00+0530") == utc);
  BOOST_TEST(micros_of("2022-12-10T20:13:00+18:00") == utc + 24LL * 3600 * 1'000'000);
  BOOST_TEST(!parse_store_date("2022-12-09T02:13:00+18:01"));
  BOOST_TEST(!parse_store_date("2022-12-09T02:13:00+05:60"));
  BOOST_TEST(!parse_store_date("2022-12-09T02:13:00"));  // local time of an unknown zone
  BOOST_TEST(!parse_store_date("2022-12-09T02:13:00+5:30"));
  BOOST_TEST(!parse_store_date("2022-12-09T02:13:00z"));
}

BOOST_AUTO_TEST_CASE(without_seconds) {
  BOOST_TEST(micros_of("2022-12-09T02:13Z") == utc_micros(2022, 12, 9, 2, 13, 0));
  BOOST_TEST(micros_of("2022-12-09T02:13+01:00") == utc_micros(2022, 12, 9, 1, 13, 0));
  BOOST_TEST(!parse_store_date("2022-12-09T02Z"));
  BOOST_TEST(!parse_store_date("2022-12-09T02:13.5Z"));
}

BOOST_AUTO_TEST_CASE(calendar_limits) {
  BOOST_TEST(micros_of("2024-02-29T00:00:00Z") == utc_micros(2024, 2, 29, 0, 0, 0));
  BOOST_TEST(micros_of("2000-02-29T00:00:00Z") == utc_micros(2000, 2, 29, 0, 0, 0));
  BOOST_TEST(!parse_store_date("2023-02-29T00:00:00Z"));
  BOOST_TEST(!parse_store_date("1900-02-29T00:00:00Z"));
  BOOST_TEST(!parse_store_date("2023-04-31T00:00:00Z"));
  BOOST_TEST(!parse_store_date("2023-13-01T00:00:00Z"));
  BOOST_TEST(!parse_store_date("2023-00-01T00:00:00Z"));
  BOOST_TEST(!parse_store_date("2023-01-00T00:00:00Z"));
  BOOST_TEST(!parse_store_date("2023-01-01T24:00:00Z"));
  BOOST_TEST(!parse_store_date("2023-01-01T23:60:00Z"));
  BOOST_TEST(!parse_store_date("2023-01-01T23:59:60Z"));
  BOOST_TEST(!parse_store_date("0000-01-01T00:00:00Z"));
}

BOOST_AUTO_TEST_CASE(malformed) {
  for (std::string_view bad :
       {"", "2023", "2023-01-01", "2023-01-01 00:00:00Z", "2023-01-01T00:00:00Z ", " 2023-01-01T00:00:00Z",
        "2023-01-01T00:00:00Zjunk", "+2023-01-01T00:00:00Z", "2023-1-01T00:00:00Z", "2023-01-01T0:00:00Z",
        "２０２３-01-01T00:00:00Z", "2023-01-01T00:00:00+00:00:00", "2023-01-01T00:00:00.-1Z", "/Date()/",
        "/Date(12a)/", "/Date(123)", "\\/Date(123)/", "/Date(1)/x", "null"}) {
    BOOST_TEST(!parse_store_date(bad), "should reject: \"" << bad << "\"");
  }
}

BOOST_AUTO_TEST_CASE(no_end_is_infinity) {
  BOOST_TEST(parse_store_date("9999-12-31T23:59:59.9999999+00:00")->is_infinity());
  BOOST_TEST(parse_store_date("9999-12-31T23:59:59.999999Z")->is_infinity());
  BOOST_TEST(parse_store_date("9999-12-31T23:59:59.9999999-08:00")->is_infinity());
  // One microsecond earlier is an ordinary instant; an offset east of UTC moves it earlier still.
  BOOST_TEST(!parse_store_date("9999-12-31T23:59:59.999998Z")->is_infinity());
  BOOST_TEST(!parse_store_date("9999-12-31T23:59:59.9999999+01:00")->is_infinity());
  BOOST_TEST(format_store_date(store_time::infinity()) == "9999-12-31T23:59:59.9999999+00:00");
  BOOST_TEST(to_pg_timestamptz(store_time::infinity()) == "infinity");
  BOOST_TEST(from_pg_timestamptz("infinity")->is_infinity());
  BOOST_TEST(from_pg_timestamptz("9999-12-31 23:59:59.999999+00")->is_infinity());
  BOOST_TEST(from_pg_timestamptz("10000-01-01 00:00:00+00")->is_infinity());  // what PostgreSQL makes of it
}

BOOST_AUTO_TEST_CASE(pre_1970) {
  BOOST_TEST(micros_of("1969-12-31T23:59:59.9999999Z") == -1);
  BOOST_TEST(micros_of("1900-01-01T00:00:00Z") == utc_micros(1900, 1, 1, 0, 0, 0));
  BOOST_TEST(micros_of("0001-01-01T00:00:00Z") == -62135596800LL * 1'000'000);
  BOOST_TEST(format_store_date({-1}) == "1969-12-31T23:59:59.9999990+00:00");
  BOOST_TEST(to_pg_timestamptz({-1}) == "1969-12-31 23:59:59.999999+00");
}

BOOST_AUTO_TEST_CASE(wcf_date_form) {
  // DateTime.MinValue serialized from UTC-8, as in collections_query_request_v6.json.
  const std::int64_t min_plus_8h = micros_of("0001-01-01T08:00:00Z");
  BOOST_TEST(micros_of("/Date(-62135568000000)/") == min_plus_8h);
  BOOST_TEST(micros_of("\\/Date(-62135568000000)\\/") == min_plus_8h);
  BOOST_TEST(micros_of("/Date(0)/") == 0);
  BOOST_TEST(micros_of("/Date(1442950971206)/") == utc_micros(2015, 9, 22, 19, 42, 51, 206000));
  // The zone suffix records where the sender was; the milliseconds are already UTC.
  BOOST_TEST(micros_of("/Date(1442950971206-0800)/") == utc_micros(2015, 9, 22, 19, 42, 51, 206000));
  BOOST_TEST(!parse_store_date("/Date(-62135596800001)/"));  // before year 1
}

BOOST_AUTO_TEST_CASE(format_round_trip) {
  for (std::string_view s :
       {"2015-09-22T19:22:51.2068724+00:00", "2022-12-09T02:13Z", "1969-07-20T20:17:40-05:00",
        "2024-02-29T23:59:59.999999+05:30", "0001-01-01T00:00:00Z"}) {
    store_time t = *parse_store_date(s);
    std::string formatted = format_store_date(t);
    BOOST_TEST(formatted.size() == 33u);
    BOOST_TEST(parse_store_date(formatted) == t, s << " -> " << formatted);
    BOOST_TEST(from_pg_timestamptz(to_pg_timestamptz(t)) == t, s << " -> " << to_pg_timestamptz(t));
  }
  BOOST_TEST(format_store_date(*parse_store_date("2015-09-22T19:22:51.2068724+00:00")) ==
             "2015-09-22T19:22:51.2068720+00:00");
  BOOST_TEST(to_pg_timestamptz(*parse_store_date("2015-09-22T19:22:51.2068724+00:00")) ==
             "2015-09-22 19:22:51.206872+00");
}

BOOST_AUTO_TEST_CASE(utc_for_people_to_read) {
  BOOST_TEST(format_utc(*parse_store_date("2015-09-22T19:22:51.2068724+05:30")) == "2015-09-22 13:52:51 UTC");
  BOOST_TEST(format_utc({-1}) == "1969-12-31 23:59:59 UTC");
  BOOST_TEST(format_utc(store_time::infinity()) == "infinity UTC");
}

BOOST_AUTO_TEST_CASE(timespans) {
  constexpr std::int64_t s = 1'000'000;
  BOOST_TEST(*parse_timespan_micros("09:43:52.8580690") == (9 * 3600 + 43 * 60 + 52) * s + 858069);
  BOOST_TEST(*parse_timespan_micros("1.02:03:04") == (86400 + 2 * 3600 + 3 * 60 + 4) * s);
  BOOST_TEST(*parse_timespan_micros("-00:00:01") == -s);
  BOOST_TEST(*parse_timespan_micros("00:00:00.0000009") == 0);  // truncated, like dates
  BOOST_TEST(*parse_timespan_micros("10675199.02:48:05.4775807") ==
             10675199LL * 86400 * s + 10085 * s + 477580);
  for (std::string_view bad :
       {"", "1", "1.02:03", "24:00:00", "00:60:00", "00:00:60", "1.2:03:04", "1..02:03:04", "00:00:00.",
        "00:00:00.12345678", "+00:00:01", "00:00:01 ", "P1D", "123456789.00:00:00"}) {
    BOOST_TEST(!parse_timespan_micros(bad), "should reject: \"" << bad << "\"");
  }
}
