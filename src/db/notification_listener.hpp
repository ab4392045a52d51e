// LISTEN entitlement_sync on a dedicated connection (get_notifs() sees nothing while a transaction is
// open, so the pool's connections can't do it). A notification is only a wake-up hint: the caller also
// polls. After a (re)connect the callback fires once, so work queued while we were away is claimed at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace esd::db {

class notification_listener {
 public:
  // on_wake is called from the listener's thread: it must only post to the event loop.
  // The connection is pinged every `keepalive` and has TCP keepalive, so a half-open connection is
  // noticed within about twice that and replaced.
  notification_listener(std::string url, std::chrono::seconds keepalive, std::function<void()> on_wake);
  ~notification_listener();  // stops and joins
  notification_listener(const notification_listener&) = delete;
  notification_listener& operator=(const notification_listener&) = delete;

  bool connected() const { return connected_.load(); }

 private:
  void loop();

  std::string url_;
  std::chrono::seconds keepalive_;
  std::function<void()> on_wake_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

}  // namespace esd::db
