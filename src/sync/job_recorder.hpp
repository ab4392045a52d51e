// What a sync found, written and logged: renewed and dead keys stored, the events completed (through the
// group commit) or failed with a retry time, grant and consume requests recorded as the Store answers
// them, and the outcome counted in the metrics and written to the log, one line per sync.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <random>
#include <string>

#include "config/config.hpp"
#include "db/db_pool.hpp"
#include "db/key_codec.hpp"
#include "db/queue.hpp"
#include "ops/metrics.hpp"
#include "sync/group_commit.hpp"
#include "sync/player_sync.hpp"

namespace esd::sync {

class job_recorder {
 public:
  // cfg is the running configuration: SIGHUP may change the [sync] retry limits.
  job_recorder(const config::config& cfg, db::db_pool& db, const db::key_codec& codec, ops::metrics& metrics,
               group_commit& commits, const std::string& owner)
      : cfg_(cfg), db_(db), codec_(codec), metrics_(metrics), commits_(commits), owner_(owner),
        rng_(std::random_device{}()) {}

  // A coroutine of its own, so that what it needs is not carried in the frame of every sync while it
  // waits for the Store.
  boost::asio::awaitable<void> finish_job(const db::sync_job& job, player_sync_result& report,
                                          std::chrono::steady_clock::time_point started);

  // Records how a grant or consume request went, on its row; a retry waits for its own event.
  boost::asio::awaitable<void> record_request(const db::sync_job& job, const request_report& r);

 private:
  boost::asio::awaitable<void> record_refused_outcome(const db::sync_job& job, const std::string& common,
                                                      const std::string& error);
  boost::asio::awaitable<void> store_keys(const db::sync_job& job, const player_sync_result& report);
  std::chrono::milliseconds backoff(int attempt, std::optional<std::chrono::seconds> retry_after);

  const config::config& cfg_;
  db::db_pool& db_;
  const db::key_codec& codec_;
  ops::metrics& metrics_;
  group_commit& commits_;
  const std::string& owner_;
  std::mt19937_64 rng_;
};

}  // namespace esd::sync
