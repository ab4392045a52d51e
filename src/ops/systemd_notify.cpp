#include "ops/systemd_notify.hpp"

#include <systemd/sd-daemon.h>

#include <ctime>

namespace esd::ops {

namespace {

void send(const std::string& state) { sd_notify(0, state.c_str()); }

std::string monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::to_string(static_cast<long long>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000);
}

}  // namespace

void notify_ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }

// MONOTONIC_USEC lets systemd 253+ (Type=notify-reload) match the reload; older versions ignore it.
void notify_reloading() { send("RELOADING=1\nMONOTONIC_USEC=" + monotonic_usec()); }

void notify_stopping(const std::string& status) { send("STOPPING=1\nSTATUS=" + status); }

void notify_status(const std::string& status) { send("STATUS=" + status); }

void notify_watchdog() { send("WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_ping_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace esd::ops
