// The dispatcher: claims due events into free slots (up to [sync] concurrency syncs at once), runs each
// player's sync, wakes on a notification, a finished sync or the poll interval, keeps the leases of what
// is in flight, and at a stop finishes or hands back what is in flight. With --drain it ends once
// nothing is ready and no retry falls due within [sync] drain_grace.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "config/config.hpp"
#include "db/db_pool.hpp"
#include "db/key_codec.hpp"
#include "db/queue.hpp"
#include "ops/metrics.hpp"
#include "sync/entra_token_cache.hpp"
#include "sync/housekeeping.hpp"
#include "sync/job_recorder.hpp"
#include "sync/store_gateway.hpp"

namespace esd::sync {

class dispatcher {
 public:
  // cfg is the running configuration: SIGHUP may change its [sync] limits, read again at each use.
  dispatcher(const config::config& cfg, bool drain, boost::asio::io_context& io, db::db_pool& db,
             store_gateway& gateway, entra_token_cache& tokens, const db::key_codec& codec, ops::metrics& metrics,
             job_recorder& recorder, const std::string& owner)
      : cfg_(cfg), drain_(drain), io_(io), db_(db), gateway_(gateway), tokens_(tokens), codec_(codec),
        metrics_(metrics), recorder_(recorder), owner_(owner), wake_timer_(io), leases_(io.get_executor()) {}

  // Runs until stop() (or, draining, until the queue is done); returns the exit status.
  boost::asio::awaitable<int> dispatch();

  // Claim now: a notification came, a slot freed up, or the limits changed. Called on the event loop.
  void wake();
  // Claims no more; dispatch() then finishes or hands back what is in flight.
  void stop();
  bool stopping() const { return stopping_; }
  int in_flight() const { return in_flight_; }
  // Syncs that outlived [sync] shutdown_timeout were handed back and are still running.
  bool abandoned() const { return abandoned_; }

 private:
  void start(db::sync_job job);
  boost::asio::awaitable<void> run_job(db::sync_job job);
  boost::asio::awaitable<void> extend_leases();
  boost::asio::awaitable<void> finish_in_flight();

  const config::config& cfg_;
  const bool drain_;
  boost::asio::io_context& io_;
  db::db_pool& db_;
  store_gateway& gateway_;
  entra_token_cache& tokens_;
  const db::key_codec& codec_;
  ops::metrics& metrics_;
  job_recorder& recorder_;
  const std::string& owner_;
  boost::asio::steady_timer wake_timer_;
  housekeeping leases_;  // extends the leases of what is in flight until dispatch() ends
  int in_flight_ = 0;
  int claim_failures_ = 0;
  bool wake_requested_ = false;
  bool backlog_ = false;  // the last claim found as many ready players as it had room for
  std::optional<std::chrono::steady_clock::time_point> batch_deadline_;  // claim by then even if few are free
  static constexpr std::chrono::milliseconds claim_batch_wait{20};
  static constexpr int max_claim_batch = 128;
  bool stopping_ = false;
  bool fatal_ = false;
  bool abandoned_ = false;
  // Shared, because a frame abandoned at shutdown is destroyed with the io_context, after the dispatcher.
  std::shared_ptr<std::set<const db::sync_job*>> in_flight_jobs_ = std::make_shared<std::set<const db::sync_job*>>();
};

}  // namespace esd::sync
