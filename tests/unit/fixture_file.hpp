// Reads a file of tests/fixtures/store (the Store's documented wire bodies) for parser tests.
#pragma once

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <string>

namespace esd::test {

inline std::string fixture(const std::string& name) {
  std::ifstream in(std::string(ESD_FIXTURES_DIR) + "/" + name, std::ios::binary);
  BOOST_TEST_REQUIRE(in.good(), "fixture " << name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace esd::test
