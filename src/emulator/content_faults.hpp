// Hostile answer content, aimed at one player like any fault: the real answer is served with one field made
// into what a broken Store could send and PostgreSQL cannot store, so tests can watch the daemon keep such
// text to the one player:
//   nul_text        a NUL (\u0000) in the field's string
//   bad_utf8_text   bytes that are not UTF-8 in the field's string (the body is then not valid JSON)
//   giant_text      the field's string `size` bytes long
//   number          the field set to the integer `value` (a negative quantity, one beyond 32 bits)
//   bad_utf8_error  an error answer with `status` whose message holds invalid UTF-8 and control characters
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "emulator/faults.hpp"
#include "emulator/http_types.hpp"

namespace esd::emulator {

// The content mode of this name, or nullopt.
std::optional<fault_mode> content_fault_mode(std::string_view name);
std::string_view content_fault_name(fault_mode m);
bool is_content_fault(fault_mode m);

// Reads "field", "item", "size" and "value" of a content fault; false and `error` set when they make no
// sense.
bool read_content_fault_fields(const boost::json::object& o, fault_rule& rule, std::string& error);

// Makes the served answer hostile as the rule says (res is the real answer, already built).
void apply_content_fault(const fault_rule& rule, http_response& res);

}  // namespace esd::emulator
