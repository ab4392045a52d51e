// The systemd notify protocol (sd_notify(3), through libsystemd): READY once the daemon can work,
// WATCHDOG pings from the event loop, RELOADING around a SIGHUP reload, STOPPING on shutdown.
// Every call is a no-op when the daemon does not run under systemd (no NOTIFY_SOCKET).
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace esd::ops {

void notify_ready(const std::string& status);
void notify_reloading();
void notify_stopping(const std::string& status);
void notify_status(const std::string& status);
void notify_watchdog();

// The interval at which to ping (half of WatchdogSec), or nullopt when no watchdog is configured.
std::optional<std::chrono::microseconds> watchdog_ping_interval();

}  // namespace esd::ops
