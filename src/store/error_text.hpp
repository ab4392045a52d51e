// Text from outside (Store answers, uploaded keys, database errors) made safe for the journal and the
// database: one escaping for log fields and stored errors, and one bound on an error line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace esd::store {

// The most bytes of one stored error line. Room for every reason the daemon words, while a flood of
// failures, or a hostile answer quoted in one, cannot bloat the database or the journal.
inline constexpr std::size_t max_error_bytes = 2048;

// Control characters (C0 and DEL) become \n, \r, \t or \xNN, and so does every byte that is not part of
// well-formed UTF-8 (PostgreSQL refuses such text, and a terminal would act on ESC or BEL). A backslash
// stays as it is; everything else is kept.
std::string escape_control(std::string_view text);

// escape_control, cut to at most max_error_bytes (never inside a character or an escape), the cut marked.
std::string bounded_error(std::string_view text);

// A short quote of untrusted text for a message: runs of line breaks and tabs fold to one space, the
// ends are trimmed, the rest is escaped as escape_control does, and the whole is cut to at most max_bytes
// (never inside a character or an escape), the cut marked "...".
std::string excerpt(std::string_view text, std::size_t max_bytes);

}  // namespace esd::store
