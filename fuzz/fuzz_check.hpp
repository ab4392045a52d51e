// A check for fuzz targets: when an invariant the parser promises does not hold, say which and abort,
// so that libFuzzer saves the input as a crash and the corpus replay test fails.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace esd::fuzz {

[[noreturn]] inline void invariant_failed(const char* what, const char* file, int line, std::string_view detail) {
  std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s", file, line, what);
  if (!detail.empty()) std::fprintf(stderr, " [%.*s]", static_cast<int>(detail.size()), detail.data());
  std::fprintf(stderr, "\n");
  std::abort();
}

// True if s holds a control character (below 0x20, or DEL), which an error message must never carry:
// messages go to the journal, where a raw newline from hostile input could forge a line.
inline bool has_control_char(std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace esd::fuzz

#define FUZZ_CHECK(cond) \
  ((cond) ? (void)0 : ::esd::fuzz::invariant_failed(#cond, __FILE__, __LINE__, {}))
#define FUZZ_CHECK_MSG(cond, detail) \
  ((cond) ? (void)0 : ::esd::fuzz::invariant_failed(#cond, __FILE__, __LINE__, (detail)))
