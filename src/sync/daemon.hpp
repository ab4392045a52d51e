// The daemon: claims due events, runs up to [sync] concurrency player syncs at once on one event loop,
// commits each outcome, and stops cleanly on SIGTERM/SIGINT (or, with --drain, when the queue is done).
//
// Its parts: the dispatcher (claims, slots, leases, shutdown), the job recorder (outcomes, metrics, the
// log line of each sync), the group commit, housekeeping and its periodic chores, the key sweep, and the
// SIGHUP reload. This file wires them together. Database work is passed to db_pool::run as a named
// lambda, and whatever an awaited call takes is a named local (GCC 12: see CMakeLists.txt).
#pragma once

#include "config/config.hpp"

namespace esd::sync {

struct run_options {
  bool drain = false;
};

// Returns the process exit status: 0 on a clean stop, 1 on a fatal error (logged).
int run_daemon(const config::config& cfg, const run_options& opts);

}  // namespace esd::sync
