// What a database error may say in a log line or a stored reason. PostgreSQL's full message can quote the
// row it refused ("DETAIL: Failing row contains (...)"), and a row of user_keys holds a player's keys: only
// the SQLSTATE and the first line of the primary message are ever passed on.
#pragma once

#include <exception>
#include <string>

namespace esd::db {

std::string describe_error(const std::exception& e);

}  // namespace esd::db
