#include "db/notification_listener.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <random>

#include "db/db_error.hpp"
#include "db/db_pool.hpp"
#include "ops/log.hpp"

namespace esd::db {

namespace {

class wake_receiver final : public pqxx::notification_receiver {
 public:
  wake_receiver(pqxx::connection_base& c, std::function<void()>& on_wake)
      : pqxx::notification_receiver(c, "entitlement_sync"), on_wake_(on_wake) {}
  void operator()(const std::string&, int) override { on_wake_(); }

 private:
  std::function<void()>& on_wake_;
};

}  // namespace

notification_listener::notification_listener(std::string url, std::chrono::seconds keepalive,
                                             std::function<void()> on_wake)
    : url_(std::move(url)), keepalive_(keepalive), on_wake_(std::move(on_wake)), thread_([this] { loop(); }) {}

notification_listener::~notification_listener() {
  stop_ = true;
  thread_.join();
}

void notification_listener::loop() {
  std::mt19937_64 rng{std::random_device{}()};
  std::chrono::milliseconds backoff{500};
  while (!stop_) {
    try {
      pqxx::connection c(url_);
      set_tcp_keepalive(c.sock(), keepalive_);
      wake_receiver receiver(c, on_wake_);
      // The receiver's LISTEN is issued lazily; force it before announcing we are connected.
      c.get_notifs();
      {
        pqxx::nontransaction tx(c);
        tx.exec("SET application_name = 'entitlement-syncd listener'");
      }
      connected_ = true;
      if (backoff > std::chrono::milliseconds{500}) log::info("listener: reconnected to the database");
      backoff = std::chrono::milliseconds{500};
      on_wake_();  // anything queued while we were not listening
      auto last_ping = std::chrono::steady_clock::now();
      while (!stop_) {
        // Wakes every 250 ms to notice stop requests.
        c.await_notification(0, 250'000);
        // A connection that only listens never sends, so a vanished server or a dropped route would go
        // unnoticed; a ping makes the kernel's TCP_USER_TIMEOUT break a half-open connection.
        const auto now = std::chrono::steady_clock::now();
        if (now - last_ping >= keepalive_) {
          last_ping = now;
          pqxx::nontransaction ping(c);
          ping.exec("SELECT 1");
        }
      }
    } catch (const std::exception& e) {
      connected_ = false;
      if (stop_) break;
      log::warning(std::string("listener: database connection lost, retrying: ") + describe_error(e));
      // Exponential backoff with full jitter, capped at 30 s; checks stop every 100 ms.
      auto wait = std::chrono::milliseconds(
          std::uniform_int_distribution<long long>(backoff.count() / 2, backoff.count())(rng));
      backoff = std::min(backoff * 2, std::chrono::milliseconds{30'000});
      for (auto waited = std::chrono::milliseconds{0}; waited < wait && !stop_;
           waited += std::chrono::milliseconds{100})
        std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
  }
  connected_ = false;
}

}  // namespace esd::db
