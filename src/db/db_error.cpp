#include "db/db_error.hpp"

#include <pqxx/except>

#include <string_view>

#include "store/error_text.hpp"

namespace esd::db {

std::string describe_error(const std::exception& e) {
  std::string_view text = e.what();
  text = text.substr(0, text.find('\n'));  // DETAIL, HINT, the query and the row come on later lines
  std::string out = store::excerpt(text, 300);
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e); sql && !sql->sqlstate().empty())
    out = "SQLSTATE " + sql->sqlstate() + ": " + out;
  return out;
}

}  // namespace esd::db
