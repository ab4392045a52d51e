#include "sync/dispatcher.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <vector>

#include "db/db_error.hpp"
#include "ops/log.hpp"
#include "ops/log_failure.hpp"
#include "sync/daemon_metrics.hpp"
#include "sync/player_sync.hpp"

namespace esd::sync {

namespace asio = boost::asio;
using namespace std::chrono_literals;

void dispatcher::wake() {
  wake_requested_ = true;
  wake_timer_.cancel();
}

void dispatcher::stop() {
  stopping_ = true;
  wake();
}

asio::awaitable<int> dispatcher::dispatch() {
  // Every lease/3 (also while stopping), so a long sync keeps its events while a dead daemon's events
  // come back within one lease.
  leases_.every(
      "queue: lease extension", [this] { return housekeeping::duration(std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.sync.lease) / 3); },
      [this] { return extend_leases(); }, housekeeping::first_run::after_interval);
  const auto drain_deadline = std::chrono::steady_clock::now() + cfg_.sync.drain_grace;
  while (!stopping_) {
    wake_requested_ = false;
    const auto& limits = cfg_.sync;
    const int free = limits.concurrency - in_flight_;
    std::size_t claimed = 0;
    // While a backlog waits (the last claim got all it asked for), claim in batches of at least a quarter
    // of the slots rather than one slot at a time: a claim costs the same statements whatever its size.
    // A batch never waits more than claim_batch_wait for its slots to free up, and holds at most
    // max_claim_batch players: a claim holds every claimed key several times over while it runs.
    const int batch = std::clamp(limits.concurrency / 4, 1, max_claim_batch);
    const auto now = std::chrono::steady_clock::now();
    if (free > 0 && free < batch && backlog_) {
      if (!batch_deadline_) batch_deadline_ = now + claim_batch_wait;
    }
    const bool batch_ready = !backlog_ || free >= batch || (batch_deadline_ && now >= *batch_deadline_);
    if (free > 0 && batch_ready) {
      batch_deadline_.reset();
      try {
        // Named locals (GCC 12).
        const int limit = std::min(free, max_claim_batch);
        const db::claim_options options{limit, owner_, limits.lease, limits.max_attempts, cfg_.entra.client_id,
                                        &codec_};
        auto claim = [&options](pqxx::connection& c) { return db::claim_jobs(c, options); };
        auto jobs = co_await db_.run(claim);
        claimed = jobs.size();
        backlog_ = static_cast<int>(claimed) == limit;
        for (auto& job : jobs) start(std::move(job));
        claim_failures_ = 0;
      } catch (const std::exception& e) {
        ++claim_failures_;
        log::error(std::string("queue: claiming events failed: ") + db::describe_error(e));
        if (drain_ && claim_failures_ >= 3) {
          fatal_ = true;
          break;
        }
      }
    }
    if (claimed > 0 && in_flight_ < limits.concurrency) continue;  // there may be more ready

    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(limits.poll_interval);
    if (batch_deadline_) wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(*batch_deadline_ - now));
    if (drain_ && in_flight_ == 0 && claimed == 0) {
      // Nothing running and nothing ready: finish unless a retry falls due within the grace period.
      std::optional<double> next;
      try {
        auto next_due = [](pqxx::connection& c) { return db::seconds_until_next_due(c); };
        next = co_await db_.run(next_due);
      } catch (const std::exception& e) {
        log::error(std::string("queue: reading the next due time failed: ") + db::describe_error(e));
        fatal_ = true;
        break;
      }
      const auto due_at = next ? std::chrono::steady_clock::now() +
                                     std::chrono::milliseconds(static_cast<long long>(*next * 1000) + 20)
                               : std::chrono::steady_clock::time_point::max();
      if (!next || due_at > drain_deadline) break;
      wait = std::min(wait,
                      std::chrono::duration_cast<std::chrono::milliseconds>(due_at - std::chrono::steady_clock::now()));
    }
    if (wake_requested_) continue;
    wake_timer_.expires_after(std::max(wait, std::chrono::milliseconds(1)));
    co_await wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_await finish_in_flight();
  leases_.stop();
  co_return fatal_ ? 1 : 0;
}

void dispatcher::start(db::sync_job job) {
  ++in_flight_;
  asio::co_spawn(io_, run_job(std::move(job)), [this](std::exception_ptr e) {
    --in_flight_;
    ops::log_exception("sync: unexpected error", e);
    wake();  // a slot is free
  });
}

asio::awaitable<void> dispatcher::run_job(db::sync_job job) {
  in_flight_jobs_->insert(&job);
  struct unregister {
    std::shared_ptr<std::set<const db::sync_job*>> jobs;
    const db::sync_job* job;
    ~unregister() { jobs->erase(job); }
  } guard{in_flight_jobs_, &job};
  const auto started = std::chrono::steady_clock::now();
  metrics_.set(metric::syncs_in_flight, static_cast<double>(in_flight_));
  // Grants and consume reports are recorded the moment the Store has answered them.
  request_recorder record = [this, &job](const request_report& r) -> asio::awaitable<void> {
    co_await recorder_.record_request(job, r);
  };
  auto report = co_await sync_player(job, gateway_, tokens_, record);
  co_await recorder_.finish_job(job, report, started);
}

asio::awaitable<void> dispatcher::extend_leases() {
  std::vector<std::int64_t> ids;
  for (const auto* job : *in_flight_jobs_) ids.push_back(job->lease_id);
  if (ids.empty()) co_return;
  try {
    auto extend = [ids, owner = owner_, lease = cfg_.sync.lease](pqxx::connection& c) {
      return db::extend_leases(c, owner, ids, lease);
    };
    auto lost = co_await db_.run(extend);
    for (auto id : lost)
      log::warning("queue: lease " + std::to_string(id) +
                   " ran out and its events were taken up again elsewhere; this sync's result will be dropped");
  } catch (const std::exception& e) {
    log::warning(std::string("queue: extending leases failed (retrying): ") + db::describe_error(e));
  }
}

asio::awaitable<void> dispatcher::finish_in_flight() {
  const auto deadline = std::chrono::steady_clock::now() + cfg_.sync.shutdown_timeout;
  asio::steady_timer t(io_);
  while (in_flight_ > 0 && std::chrono::steady_clock::now() < deadline) {
    t.expires_after(50ms);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (in_flight_ == 0) co_return;
  // Hand the unfinished events back now rather than when the lease runs out; a sync that still
  // finishes later finds the events no longer ours and writes nothing.
  std::vector<db::sync_job> unfinished;
  for (const auto* job : *in_flight_jobs_) unfinished.push_back(*job);
  std::size_t handed_back = 0;
  for (const auto& job : unfinished) {
    try {
      auto give_back = [&job, owner = owner_](pqxx::connection& c) { return db::hand_back_job(c, job, owner); };
      if (co_await db_.run(give_back)) ++handed_back;
    } catch (const std::exception& e) {
      log::error("stopping: handing back events failed (the lease brings them back): " + db::describe_error(e));
    }
  }
  log::warning("stopping with " + std::to_string(unfinished.size()) + " syncs unfinished after " +
               std::to_string(cfg_.sync.shutdown_timeout.count()) + "s: handed back " + std::to_string(handed_back) +
               " to the queue");
  abandoned_ = true;
}

}  // namespace esd::sync
