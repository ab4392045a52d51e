// The completion handler every co_spawn'ed coroutine gets: co_spawn(..., detached) would swallow an
// exception, so what a coroutine throws is logged, naming the task that stopped.
#pragma once

#include <exception>
#include <string>
#include <string_view>

#include "ops/log.hpp"

namespace esd::ops {

// Logs "WHAT: the exception's message" when e holds an exception; nothing otherwise.
inline void log_exception(std::string_view what, std::exception_ptr e, log::level level = log::level::error) {
  if (!e) return;
  std::string message;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    message = ex.what();
  } catch (...) {
    message = "unknown exception";
  }
  if (log::enabled(level)) log::write(level, std::string(what) + ": " + message);
}

// co_spawn(ex, task(), log_failure("queue: pruning stopped")): the handler for a coroutine with no result.
inline auto log_failure(std::string what, log::level level = log::level::error) {
  return [what = std::move(what), level](std::exception_ptr e) { log_exception(what, e, level); };
}

}  // namespace esd::ops
