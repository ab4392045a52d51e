// The daemon's chores beside the syncs, each run by housekeeping::every: pruning old events, feeding
// backfills into the queue, refreshing the database gauges, and pinging the systemd watchdog.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "config/config.hpp"
#include "db/db_pool.hpp"
#include "ops/metrics.hpp"
#include "sync/housekeeping.hpp"

namespace esd::sync {

class upkeep {
 public:
  // cfg is the running configuration: SIGHUP may change its [sync] limits between rounds.
  upkeep(const config::config& cfg, db::db_pool& db, ops::metrics& metrics, housekeeping& chores)
      : cfg_(cfg), db_(db), metrics_(metrics), chores_(chores) {}

  // Pruning and backfill feeding (not in drain mode), gauges (with a metrics endpoint), watchdog pings
  // (under a systemd watchdog).
  void start(bool drain, bool gauges);

  // The database answered the last gauge refresh; for readiness.
  bool db_reachable() const { return db_reachable_; }

 private:
  boost::asio::awaitable<void> prune();
  boost::asio::awaitable<void> feed_backfills();
  boost::asio::awaitable<void> refresh_gauges();

  const config::config& cfg_;
  db::db_pool& db_;
  ops::metrics& metrics_;
  housekeeping& chores_;
  bool db_reachable_ = true;
};

}  // namespace esd::sync
