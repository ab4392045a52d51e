#include "sync/upkeep.hpp"

#include "db/db_error.hpp"
#include "db/queue.hpp"
#include "ops/log.hpp"
#include "ops/systemd_notify.hpp"
#include "sync/daemon_metrics.hpp"

namespace esd::sync {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

void upkeep::start(bool drain, bool gauges) {
  using first_run = housekeeping::first_run;
  if (!drain) {
    chores_.every(
        "queue: pruning", [this] { return housekeeping::duration(cfg_.sync.prune_interval); },
        [this] { return prune(); }, first_run::after_interval);
    chores_.every(
        "backfill", [] { return housekeeping::duration(1s); }, [this] { return feed_backfills(); }, first_run::after_interval);
  }
  if (gauges) {
    // Gauges that need the database are read every few seconds, never at scrape time.
    chores_.every(
        "metrics: queue statistics", [] { return housekeeping::duration(5s); }, [this] { return refresh_gauges(); },
        first_run::at_once);
  }
  // Pinged from the event loop itself, so a stuck loop stops the pings and gets the daemon restarted.
  if (auto interval = ops::watchdog_ping_interval()) {
    chores_.every(
        "systemd: watchdog pings", [every = *interval] { return housekeeping::duration(every); },
        []() -> asio::awaitable<void> {
          ops::notify_watchdog();
          co_return;
        },
        first_run::at_once);
  }
}

// Deletes old finished events in short batches, one daemon at a time (a transaction-level lock would
// not help across batches; concurrent pruners simply skip each other's rows).
asio::awaitable<void> upkeep::prune() {
  long long total = 0;
  try {
    while (!chores_.stopped()) {
      auto batch = [keep_done = cfg_.sync.keep_done, keep_failed = cfg_.sync.keep_failed,
                    size = cfg_.sync.prune_batch](pqxx::connection& c) {
        return db::prune_events(c, keep_done, keep_failed, size);
      };
      const long long n = co_await db_.run(batch);
      total += n;
      if (n < cfg_.sync.prune_batch) break;
      // Let claims and writes in between batches.
      const housekeeping::duration between_batches = 50ms;
      co_await chores_.pause(between_batches);
    }
  } catch (const std::exception& e) {
    log::warning(std::string("queue: pruning old events failed: ") + db::describe_error(e));
  }
  if (total > 0) {
    metrics_.inc(metric::events_pruned, {}, static_cast<double>(total));
    log::info("queue: pruned " + log::field("events", total));
  }
}

// Feeds open backfills into the queue, [sync] backfill_rate players per second across all daemons,
// only while no upload or resync is due (entitlement_sync.feed_backfill decides).
asio::awaitable<void> upkeep::feed_backfills() {
  try {
    auto feed = [rate = cfg_.sync.backfill_rate](pqxx::connection& c) { return db::feed_backfill(c, rate); };
    const int n = co_await db_.run(feed);
    if (n > 0) {
      metrics_.inc(metric::backfill_queued, {}, n);
      log::debug("backfill: queued " + log::field("players", static_cast<long long>(n)));
    }
  } catch (const std::exception& e) {
    log::warning(std::string("backfill: feeding the queue failed: ") + db::describe_error(e));
  }
}

asio::awaitable<void> upkeep::refresh_gauges() {
  try {
    auto read = [](pqxx::connection& c) { return db::read_queue_stats(c); };
    auto q = co_await db_.run(read);
    metrics_.set(metric::queue_waiting, static_cast<double>(q.waiting));
    metrics_.set(metric::queue_running, static_cast<double>(q.running));
    metrics_.set(metric::queue_failed, static_cast<double>(q.failed));
    metrics_.set(metric::queue_oldest, q.oldest_waiting_seconds);
    metrics_.set(metric::keys_expiring, static_cast<double>(q.keys_expiring_7d));
    db_reachable_ = true;
  } catch (const std::exception& e) {
    db_reachable_ = false;
    log::warning(std::string("metrics: reading queue statistics failed: ") + db::describe_error(e));
  }
  metrics_.set(metric::db_busy, static_cast<double>(db_.busy()));
}

}  // namespace esd::sync
