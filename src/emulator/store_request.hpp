// Reading the JSON body of a Store request, shared by the Store endpoints: the body as an object, its
// string fields, the GUID form of order and tracking ids, and the 400 InvalidParameter answer naming the
// field at fault.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "emulator/http_types.hpp"
#include "emulator/store_errors.hpp"

namespace esd::emulator {

// nullopt when the body is not JSON or not an object.
std::optional<boost::json::object> parse_body_object(std::string_view body);

// The field when it is present and a string; nullptr otherwise.
const boost::json::string* string_field(const boost::json::object& o, std::string_view name);

// The field's text when it is present and a string; empty otherwise.
std::string string_or_empty(const boost::json::object& o, std::string_view name);

// ASCII lower case: the Store compares GUIDs and offer tokens without regard to case.
std::string lowercase(std::string_view s);

// 8-4-4-4-12 hexadecimal digits, either case, as .NET reads a Guid from JSON.
bool is_guid(std::string_view text);

http_response bad_parameter(std::string_view detail, std::string_view source = collections_source);

}  // namespace esd::emulator
