#include "ops/core_dumps.hpp"

#include <sys/prctl.h>
#include <sys/resource.h>

namespace esd::ops {

bool forbid_core_dumps() {
  // Both: with fs.suid_dumpable = 2 a non-dumpable process is still dumped (for root), and a core_pattern
  // pipe ignores the size limit unless the handler (systemd-coredump does) honours it.
  const rlimit none{0, 0};
  const bool limited = ::setrlimit(RLIMIT_CORE, &none) == 0;
  const bool undumpable = ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
  return limited && undumpable;
}

}  // namespace esd::ops
