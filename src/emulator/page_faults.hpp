// The answers of the page-loop faults for the collections query and the recurrences query: `cycle`, a page
// whose continuation token leads in a circle (no token -> A, A -> B, B -> A, ...), and `huge`, pages of
// about `bytes` each made of well-formed generated items, continued while the rule has hits left. They stand
// in for the Store's answer, whatever the request asked for (a query with a token of the real Store would
// be refused as not one of ours).
#pragma once

#include "emulator/faults.hpp"
#include "emulator/http_types.hpp"

namespace esd::emulator {

// `recurrences`: items shaped as the recurrences query's, else as the collections query's.
http_response page_fault_answer(const fault_rule& fault, bool recurrences, const http_request& req);

}  // namespace esd::emulator
