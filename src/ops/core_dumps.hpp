// The process's memory holds the client secret, Entra tokens and players' Store ID keys: no core dump
// may write them to disk, and no other process of the same user may read them through /proc or ptrace.
#pragma once

namespace esd::ops {

// Marks the process not dumpable (PR_SET_DUMPABLE 0) and sets its core size limit to 0. Call first thing,
// before any secret is read. Returns false (with errno) only if the kernel refused.
bool forbid_core_dumps();

}  // namespace esd::ops
