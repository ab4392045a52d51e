// The daemon: claims due events, runs up to [sync] concurrency player syncs at once on one event loop,
// commits each outcome, and stops cleanly on SIGTERM/SIGINT (or, with --drain, when the queue is done).
#pragma once

#include "config/config.hpp"

namespace esd::sync {

struct run_options {
  bool drain = false;
};

// Returns the process exit status: 0 on a clean stop, 1 on a fatal error (logged).
int run_daemon(const config::config& cfg, const run_options& opts);

}  // namespace esd::sync
