#include "sync/daemon.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "db/db_error.hpp"
#include "db/db_pool.hpp"
#include "db/migrations.hpp"
#include "db/notification_listener.hpp"
#include "db/queue.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/metrics_server.hpp"
#include "ops/systemd_notify.hpp"
#include "store/json_fields.hpp"
#include "sync/daemon_metrics.hpp"
#include "sync/key_renewal.hpp"
#include "sync/player_sync.hpp"

namespace esd::sync {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::string make_owner_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::random_device rd;
  char suffix[9];
  snprintf(suffix, sizeof suffix, "%08x", rd());
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + suffix;
}

class daemon {
 public:
  daemon(const config::config& cfg, const run_options& opts, asio::io_context& io, db::db_pool& db,
         store_gateway& gateway, entra_token_cache& tokens, const db::key_codec& codec, ops::metrics& metrics)
      : cfg_(cfg), sync_(cfg.sync), opts_(opts), io_(io), db_(db), gateway_(gateway), tokens_(tokens), codec_(codec),
        metrics_(metrics),
        owner_(make_owner_name()), wake_timer_(io), rng_(std::random_device{}()) {}

  const std::string& owner() const { return owner_; }

  // SIGHUP: the [sync] limits that apply at once. Returns what changed, in words.
  std::vector<std::string> apply_sync_limits(const config::sync_config& fresh) {
    std::vector<std::string> changed;
    auto note = [&](const char* name, auto before, auto after) {
      if (before != after)
        changed.push_back(std::string(name) + " " + std::to_string(before) + " -> " + std::to_string(after));
    };
    note("concurrency", sync_.concurrency, fresh.concurrency);
    note("poll_interval", sync_.poll_interval.count(), fresh.poll_interval.count());
    note("max_attempts", sync_.max_attempts, fresh.max_attempts);
    note("retry_base", sync_.retry_base.count(), fresh.retry_base.count());
    note("retry_cap", sync_.retry_cap.count(), fresh.retry_cap.count());
    note("shutdown_timeout", sync_.shutdown_timeout.count(), fresh.shutdown_timeout.count());
    note("lease", sync_.lease.count(), fresh.lease.count());
    note("backfill_rate", sync_.backfill_rate, fresh.backfill_rate);
    note("keep_done", sync_.keep_done.count(), fresh.keep_done.count());
    note("keep_failed", sync_.keep_failed.count(), fresh.keep_failed.count());
    note("prune_interval", sync_.prune_interval.count(), fresh.prune_interval.count());
    note("prune_batch", sync_.prune_batch, fresh.prune_batch);
    sync_.lease = fresh.lease;
    sync_.backfill_rate = fresh.backfill_rate;
    sync_.keep_done = fresh.keep_done;
    sync_.keep_failed = fresh.keep_failed;
    sync_.prune_interval = fresh.prune_interval;
    sync_.prune_batch = fresh.prune_batch;
    sync_.concurrency = fresh.concurrency;
    sync_.poll_interval = fresh.poll_interval;
    sync_.max_attempts = fresh.max_attempts;
    sync_.retry_base = fresh.retry_base;
    sync_.retry_cap = fresh.retry_cap;
    sync_.shutdown_timeout = fresh.shutdown_timeout;
    if (!changed.empty()) wake();  // more room may mean more claims now
    return changed;
  }

  // Called on the event loop (the listener posts here).
  void wake() {
    wake_requested_ = true;
    wake_timer_.cancel();
  }

  void request_stop(const char* why) {
    if (stopping_) return;
    ops::notify_stopping(std::string("stopping: ") + why);
    watchdog_timer_.cancel();
    gauge_timer_.cancel();
    log::info(std::string("stopping: ") + why + " " + log::field("in_flight", static_cast<long long>(in_flight_)));
    stopping_ = true;
    sweep_timer_.cancel();
    prune_timer_.cancel();
    backfill_timer_.cancel();
    wake();
  }

  asio::awaitable<int> dispatch() {
    const auto drain_deadline = std::chrono::steady_clock::now() + sync_.drain_grace;
    while (!stopping_) {
      wake_requested_ = false;
      const int free = sync_.concurrency - in_flight_;
      std::size_t claimed = 0;
      // While a backlog waits (the last claim got all it asked for), claim in batches of at least a quarter
      // of the slots rather than one slot at a time: a claim costs a dozen statements whatever its size.
      // A batch never waits more than claim_batch_wait for its slots to free up, and holds at most
      // max_claim_batch players: a claim holds every claimed key several times over while it runs.
      const int batch = std::clamp(sync_.concurrency / 4, 1, max_claim_batch);
      const auto now = std::chrono::steady_clock::now();
      if (free > 0 && free < batch && backlog_) {
        if (!batch_deadline_) batch_deadline_ = now + claim_batch_wait;
      }
      const bool batch_ready = !backlog_ || free >= batch || (batch_deadline_ && now >= *batch_deadline_);
      if (free > 0 && batch_ready) {
        batch_deadline_.reset();
        try {
          // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
          const int limit = std::min(free, max_claim_batch);
          const db::claim_options options{limit, owner_, sync_.lease, sync_.max_attempts, cfg_.entra.client_id,
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
          if (opts_.drain && claim_failures_ >= 3) {
            fatal_ = true;
            break;
          }
        }
      }
      if (claimed > 0 && in_flight_ < sync_.concurrency) continue;  // there may be more ready

      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(sync_.poll_interval);
      if (batch_deadline_) {
        wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(*batch_deadline_ - now));
      }
      if (opts_.drain && in_flight_ == 0 && claimed == 0) {
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
        wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                  due_at - std::chrono::steady_clock::now()));
      }
      if (wake_requested_) continue;
      wake_timer_.expires_after(std::max(wait, std::chrono::milliseconds(1)));
      co_await wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_await finish_in_flight();
    finished_ = true;
    lease_timer_.cancel();
    co_return fatal_ ? 1 : 0;
  }

 private:
  void start(sync_job job) {
    ++in_flight_;
    asio::co_spawn(io_, run_job(std::move(job)), [this](std::exception_ptr e) {
      --in_flight_;
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log::error(std::string("sync: unexpected error: ") + ex.what());
        }
      }
      wake();  // a slot is free
    });
  }

  asio::awaitable<void> run_job(sync_job job) {
    // Shared, because a frame abandoned at shutdown is destroyed with the io_context, after the daemon.
    in_flight_jobs_->insert(&job);
    struct unregister {
      std::shared_ptr<std::set<const sync_job*>> jobs;
      const sync_job* job;
      ~unregister() { jobs->erase(job); }
    } guard{in_flight_jobs_, &job};
    const auto started = std::chrono::steady_clock::now();
    metrics_.set(metric::syncs_in_flight, static_cast<double>(in_flight_));
    // Grants and consume reports are recorded the moment the Store has answered them.
    request_recorder record = [this, &job](const request_report& r) -> asio::awaitable<void> {
      co_await record_request(job, r);
    };
    auto report = co_await sync_player(job, gateway_, tokens_, record);
    co_await finish_job(job, report, started);
  }

  // What a sync found, written and logged. A coroutine of its own, so that what it needs is not carried
  // in the frame of every sync while it waits for the Store.
  asio::awaitable<void> finish_job(const sync_job& job, player_sync_result& report,
                                   std::chrono::steady_clock::time_point started) {
    auto& result = report.result;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    metrics_.observe(metric::sync_duration, static_cast<double>(ms.count()) / 1000.0);
    if (!report.renewed.empty())
      metrics_.inc(metric::key_renewals, {{"trigger", "sync"}, {"outcome", "renewed"}},
                   static_cast<double>(report.renewed.size()));
    if (!report.dead.empty())
      metrics_.inc(metric::key_renewals, {{"trigger", "sync"}, {"outcome", "dead"}},
                   static_cast<double>(report.dead.size()));
    std::string common = log::field("user", job.user_id) + " " +
                         log::field("events", static_cast<long long>(job.event_ids.size())) + " " +
                         log::field("first_event", job.event_ids.front()) + " " +
                         log::field("attempt", job.attempts) + " " + (job.full_sync ? "full=1 " : "");
    std::optional<std::string> refused;  // what the database said when it refused the write
    try {
      // Renewed keys first, whatever the outcome: after a renewal the old key may no longer work.
      for (const auto& r : report.renewed) {
        const auto& old_fingerprint = job.key_of(r.kind).fingerprint;
        if (!old_fingerprint) continue;
        auto store_key = [&r, old = *old_fingerprint, fresh = codec_.to_stored(r.new_key, job.user_id, r.kind),
                          user = job.user_id](pqxx::connection& c) {
          return db::store_renewed_key(c, user, r.kind, old, fresh, r.issued_at, r.expires_at);
        };
        co_await db_.run(store_key);
      }
      for (const auto& d : report.dead) {
        const auto& fingerprint = job.key_of(d.kind).fingerprint;
        if (!fingerprint) continue;
        auto mark = [&d, fp = *fingerprint, user = job.user_id](pqxx::connection& c) {
          db::mark_key_dead(c, user, d.kind, fp, d.reason);
          return true;
        };
        co_await db_.run(mark);
      }
      if (auto* ok = std::get_if<sync_outcome>(&result)) {
        if (report.subscriptions_failure) {
          const auto& f = *report.subscriptions_failure;
          ok->subscriptions_error = f.reason;
          if (f.kind == failure_kind::transient)
            ok->subscriptions_retry_at = std::chrono::system_clock::now() +
                                         retry_delay(job.attempts, sync_.retry_base, sync_.retry_cap, f.retry_after, rng_);
          log::warning("subscriptions " + log::field("user", job.user_id) + " " + log::field("reason", f.reason));
          metrics_.inc(metric::subscription_reads, {{"outcome", "failed"}});
        } else if (ok->subscriptions) {
          metrics_.inc(metric::subscription_reads, {{"outcome", "ok"}});
        }
        bool mine = co_await complete(job, *ok);
        if (!mine) metrics_.inc(metric::leases_lost);
        log::info("sync " + common + log::field("items", static_cast<long long>(ok->items.size())) + " " +
                  log::field("pages", ok->pages) + " " +
                  (ok->throttled_waits ? log::field("throttled_waits", ok->throttled_waits) + " " : std::string()) +
                  (ok->items_refused ? log::field("refused", ok->items_refused) + " " : std::string()) +
                  log::field("duration_ms", static_cast<long long>(ms.count())) +
                  " " + (mine ? "outcome=ok" : "outcome=lost-lease"));
        metrics_.inc(metric::events, {{"outcome", mine ? "done" : "lost_lease"}});
        if (mine) metrics_.inc(metric::items_written, {}, static_cast<double>(ok->items.size()));
      } else {
        auto& failure = std::get<sync_failure>(result);
        std::optional<std::chrono::system_clock::time_point> retry_at;
        if (failure.kind == failure_kind::transient)
          retry_at = std::chrono::system_clock::now() + retry_delay(job.attempts, sync_.retry_base,
                                                                    sync_.retry_cap, failure.retry_after, rng_);
        auto fail = [&job, &failure, &retry_at, owner = owner_, max = sync_.max_attempts](pqxx::connection& c) {
          return db::fail_job(c, job, owner, failure.reason, retry_at, max, failure.dead_key);
        };
        const auto ended = co_await db_.run(fail);
        const char* outcome = ended == db::fail_outcome::failed ? "failed"
                              : ended == db::fail_outcome::retry ? "retry"
                                                                 : "lost-lease";
        auto line = "sync " + common + log::field("duration_ms", static_cast<long long>(ms.count())) + " " +
                    "outcome=" + outcome + " " + log::field("reason", failure.reason);
        if (ended == db::fail_outcome::retry) log::info(line); else log::warning(line);
        if (ended == db::fail_outcome::lost) metrics_.inc(metric::leases_lost);
        metrics_.inc(metric::events, {{"outcome", ended == db::fail_outcome::lost ? "lost_lease" : outcome}});
        metrics_.inc(metric::events_failed, {{"reason", failure.code}});
      }
    } catch (const std::exception& e) {
      // The database went away mid-write (or a commit's outcome is unknown): the lease brings the events
      // back; nothing is lost. Any other refusal is recorded below.
      if (dynamic_cast<const pqxx::broken_connection*>(&e) || dynamic_cast<const pqxx::in_doubt_error*>(&e))
        log::error("sync " + common + "outcome=unrecorded " + log::field("error", db::describe_error(e)));
      else
        refused = db::describe_error(e);
    }
    if (refused) co_await record_refused_outcome(job, common, *refused);
  }

  // The database refused what a sync wrote, for a reason other than a lost connection (a value it cannot
  // take, a constraint): a second, minimal write records a failure, so the events retry or end failed with
  // the reason instead of waiting out their lease, and user_status says why.
  asio::awaitable<void> record_refused_outcome(const sync_job& job, const std::string& common,
                                               const std::string& error) {
    const std::string reason = "the database refused to store this sync's outcome: " +
                               store::printable_excerpt(error, 300);
    const auto retry_at = std::chrono::system_clock::now() +
                          retry_delay(job.attempts, sync_.retry_base, sync_.retry_cap, std::nullopt, rng_);
    try {
      auto fail = [&job, &reason, retry_at, owner = owner_, max = sync_.max_attempts](pqxx::connection& c) {
        return db::fail_job(c, job, owner, reason, retry_at, max);
      };
      const auto ended = co_await db_.run(fail);
      const char* outcome = ended == db::fail_outcome::failed ? "failed"
                            : ended == db::fail_outcome::retry ? "retry"
                                                               : "lost-lease";
      log::warning("sync " + common + "outcome=" + outcome + " " + log::field("reason", reason));
      metrics_.inc(metric::events, {{"outcome", ended == db::fail_outcome::lost ? "lost_lease" : outcome}});
      metrics_.inc(metric::events_failed, {{"reason", "db_refused"}});
    } catch (const std::exception& e) {
      log::error("sync " + common + "outcome=unrecorded " + log::field("error", db::describe_error(e)));
    }
  }

  // Group commit: syncs that finish while a write is under way are written together by the next one, in
  // one transaction with set-based statements, so a storm costs a few transactions instead of one per
  // player, and a lone sync waits for nobody.
  struct pending_completion {
    const sync_job* job;
    const sync_outcome* outcome;
    asio::steady_timer* done;
    bool mine = false;
    std::exception_ptr error;
  };

  asio::awaitable<bool> complete(const sync_job& job, const sync_outcome& outcome) {
    asio::steady_timer done(io_, std::chrono::steady_clock::time_point::max());
    pending_completion p{&job, &outcome, &done, false, nullptr};
    completions_.push_back(&p);
    if (!writing_completions_) {
      writing_completions_ = true;
      asio::co_spawn(io_, write_completions(), asio::detached);
    }
    co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
    if (p.error) std::rethrow_exception(p.error);
    co_return p.mine;
  }

  asio::awaitable<void> write_completions() {
    while (!completions_.empty()) {
      std::vector<pending_completion*> batch;
      while (!completions_.empty() && batch.size() < 128) {
        batch.push_back(completions_.front());
        completions_.pop_front();
      }
      std::vector<const sync_job*> jobs;
      std::vector<const sync_outcome*> outcomes;
      for (auto* p : batch) {
        jobs.push_back(p->job);
        outcomes.push_back(p->outcome);
      }
      bool batch_failed = false;
      try {
        // Jobs capture nothing of the daemon: after a shutdown timeout they may run once it is gone.
        auto write = [jobs, outcomes, owner = owner_, max = sync_.max_attempts](pqxx::connection& c) {
          return db::complete_jobs(c, jobs, outcomes, owner, max);
        };
        auto mine = co_await db_.run(write);
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->mine = mine[i];
      } catch (const std::exception& e) {
        batch_failed = batch.size() > 1;
        if (!batch_failed) batch.front()->error = std::current_exception();
      }
      // One sync whose rows the database refuses must not hold back the others: write each alone.
      if (batch_failed) {
        for (auto* p : batch) {
          try {
            auto write_one = [job = p->job, outcome = p->outcome, owner = owner_,
                              max = sync_.max_attempts](pqxx::connection& c) {
              return db::complete_job(c, *job, owner, *outcome, max);
            };
            p->mine = co_await db_.run(write_one);
          } catch (const std::exception&) {
            p->error = std::current_exception();
          }
        }
      }
      for (auto* p : batch) p->done->cancel();
    }
    writing_completions_ = false;
  }

  // Records how a grant or consume request went, on its row; a retry waits for its own event.
  asio::awaitable<void> record_request(const sync_job& job, const request_report& r) {
    db::request_result result;
    result.request_id = r.request_id;
    result.order_state = r.order_state;
    result.line_item_id = r.line_item_id;
    if (!r.failure) {
      result.end = db::request_end::done;
    } else {
      result.error = r.failure->reason;
      if (r.failure->kind == failure_kind::transient) {
        result.end = db::request_end::retry;
        result.retry_at = std::chrono::system_clock::now() + retry_delay(r.attempts_before + 1, sync_.retry_base,
                                                                         sync_.retry_cap, r.failure->retry_after, rng_);
      } else {
        result.end = db::request_end::failed;
      }
    }
    const bool grant = r.kind == request_kind::grant;
    const char* what = grant ? "grant" : "consume";
    std::string state;
    try {
      auto write = [result, user = job.user_id, grant, max = sync_.max_attempts](pqxx::connection& c) {
        return grant ? db::record_grant(c, user, result, max) : db::record_consume(c, user, result, max);
      };
      state = co_await db_.run(write);
    } catch (const std::exception& e) {
      // The row stays pending; its next try sends the same idempotency key, so nothing happens twice.
      log::error(std::string(what) + " " + log::field("user", job.user_id) + " " +
                 log::field("request", r.request_id) + " outcome=unrecorded " + log::field("error", db::describe_error(e)));
      co_return;
    }
    const std::string outcome = state.empty() ? "already-recorded" : state == "pending" ? "retry" : state;
    std::string line = std::string(what) + " " + log::field("user", job.user_id) + " " +
                       log::field("request", r.request_id) + " " + log::field("attempt", r.attempts_before + 1) +
                       " outcome=" + outcome;
    if (grant && !r.order_state.empty()) line += " " + log::field("order_state", r.order_state);
    if (r.failure) line += " " + log::field("reason", r.failure->reason);
    if (state == "failed") log::warning(line); else log::info(line);
    metrics_.inc(metric::purchase_requests, {{"kind", what}, {"outcome", outcome}});
  }

  // Extends the leases of everything in flight every lease/3 (also while stopping), so a long sync keeps
  // its events while a dead daemon's events come back within one lease.
  asio::awaitable<void> extend_leases() {
    while (!finished_) {
      const std::chrono::milliseconds every = std::chrono::duration_cast<std::chrono::milliseconds>(sync_.lease) / 3;
      lease_timer_.expires_after(every);
      co_await lease_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (finished_) break;
      std::vector<std::int64_t> ids;
      for (const auto* job : *in_flight_jobs_) ids.push_back(job->lease_id);
      if (ids.empty()) continue;
      try {
        auto extend = [ids, owner = owner_, lease = sync_.lease](pqxx::connection& c) {
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
  }

  // Deletes old finished events in short batches, one daemon at a time (a transaction-level lock would
  // not help across batches; concurrent pruners simply skip each other's rows).
  asio::awaitable<void> prune() {
    while (!stopping_) {
      const std::chrono::milliseconds every = std::chrono::duration_cast<std::chrono::milliseconds>(sync_.prune_interval);
      prune_timer_.expires_after(every);
      co_await prune_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      long long total = 0;
      try {
        while (!stopping_) {
          auto batch = [keep_done = sync_.keep_done, keep_failed = sync_.keep_failed,
                        size = sync_.prune_batch](pqxx::connection& c) {
            return db::prune_events(c, keep_done, keep_failed, size);
          };
          const long long n = co_await db_.run(batch);
          total += n;
          if (n < sync_.prune_batch) break;
          // Let claims and writes in between batches.
          prune_timer_.expires_after(50ms);
          co_await prune_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
      } catch (const std::exception& e) {
        log::warning(std::string("queue: pruning old events failed: ") + db::describe_error(e));
      }
      if (total > 0) {
        metrics_.inc(metric::events_pruned, {}, static_cast<double>(total));
        log::info("queue: pruned " + log::field("events", total));
      }
    }
  }

  // Feeds open backfills into the queue, [sync] backfill_rate players per second across all daemons,
  // only while no upload or resync is due (entitlement_sync.feed_backfill decides).
  asio::awaitable<void> feed_backfills() {
    while (!stopping_) {
      backfill_timer_.expires_after(1s);
      co_await backfill_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (stopping_) break;
      try {
        auto feed = [rate = sync_.backfill_rate](pqxx::connection& c) { return db::feed_backfill(c, rate); };
        const int n = co_await db_.run(feed);
        if (n > 0) {
          metrics_.inc(metric::backfill_queued, {}, n);
          log::debug("backfill: queued " + log::field("players", static_cast<long long>(n)));
        }
      } catch (const std::exception& e) {
        log::warning(std::string("backfill: feeding the queue failed: ") + db::describe_error(e));
      }
    }
  }

 public:
  void start_housekeeping() {
    auto report = [](const char* what) {
      return [what](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log::error(std::string(what) + " stopped: " + ex.what());
        }
      };
    };
    asio::co_spawn(io_, extend_leases(), report("queue: lease extension"));
    if (!opts_.drain) {
      asio::co_spawn(io_, prune(), report("queue: pruning"));
      asio::co_spawn(io_, feed_backfills(), report("backfill"));
    }
  }

 private:
  // Pings the systemd watchdog from the event loop itself, so a stuck loop stops the pings and gets the
  // daemon restarted.
  asio::awaitable<void> watchdog(std::chrono::microseconds interval) {
    while (!stopping_) {
      ops::notify_watchdog();
      watchdog_timer_.expires_after(interval);
      co_await watchdog_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

 public:
  void start_watchdog() {
    auto interval = ops::watchdog_ping_interval();
    if (!interval) return;
    asio::co_spawn(io_, watchdog(*interval), [](std::exception_ptr) {});
  }

 private:
  // Gauges that need the database are read every few seconds, never at scrape time.
  asio::awaitable<void> refresh_gauges() {
    while (!stopping_) {
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
      gauge_timer_.expires_after(5s);
      co_await gauge_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

 public:
  void start_gauges() {
    asio::co_spawn(io_, refresh_gauges(), [](std::exception_ptr) {});
  }
  bool db_reachable() const { return db_reachable_; }

 private:
  asio::awaitable<void> sweep_pause(std::chrono::milliseconds d) {
    if (stopping_) co_return;
    sweep_timer_.expires_after(d);
    co_await sweep_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  // Keeps stored keys alive between logins: each round renews at most sweep_batch keys of players seen
  // within keep_alive_for, spaced evenly over the round, so renewals never come as a burst.
  asio::awaitable<void> renewal_sweep() {
    const auto& k = cfg_.keys;
    if (k.keep_alive_for.count() == 0) co_return;
    // Every duration is computed into a named local before co_await: GCC 12 mishandles temporaries
    // (such as the reference std::min returns) that live across a suspension.
    const auto round = std::chrono::duration_cast<std::chrono::milliseconds>(k.sweep_interval);
    const auto spacing = round / std::max(k.sweep_batch, 1);
    const std::chrono::milliseconds first_wait = round < 2000ms ? round : 2000ms;  // claims go first
    co_await sweep_pause(first_wait);
    while (!stopping_) {
      const auto round_start = std::chrono::steady_clock::now();
      std::vector<db::key_due> due;
      try {
        auto find = [&k, codec = &codec_](pqxx::connection& c) {
          return db::keys_due_for_renewal(c, k.renew_after, k.renew_before_expiry, k.keep_alive_for, k.sweep_batch,
                                          codec);
        };
        due = co_await db_.run(find);
      } catch (const std::exception& e) {
        log::warning(std::string("keys: sweep query failed: ") + db::describe_error(e));
      }
      for (const auto& d : due) {
        if (stopping_) co_return;
        if (d.key.empty()) {
          log::warning("keys: sweep cannot read the stored key " + log::field("user", d.user_id) +
                       " (encrypted with a key not in [security] key_encryption_key_file)");
          continue;
        }
        const std::chrono::milliseconds no_wait{0};
        if (auto over = co_await gateway_.admit(d.user_id, no_wait)) continue;  // the player is busy: next round
        auto r = co_await renew_store_id_key(d.key, d.kind, gateway_, tokens_, d.user_id);
        const std::string who = log::field("user", d.user_id) + " " + log::field("key", store::to_string(d.kind));
        static constexpr const char* names[] = {"renewed", "refused_host", "dead", "failed"};
        metrics_.inc(metric::key_renewals, {{"trigger", "sweep"}, {"outcome", names[static_cast<int>(r.outcome)]}});
        try {
          if (r.outcome == renewal_result::status::renewed) {
            auto store_key = [&d, &r, fresh = codec_.to_stored(r.key, d.user_id, d.kind)](pqxx::connection& c) {
              return db::store_renewed_key(c, d.user_id, d.kind, d.fingerprint, fresh, r.issued_at, r.expires_at);
            };
            co_await db_.run(store_key);
            log::info("keys: sweep renewed " + who);
          } else if (r.outcome == renewal_result::status::dead) {
            auto mark = [&d, &r](pqxx::connection& c) {
              db::mark_key_dead(c, d.user_id, d.kind, d.fingerprint, r.reason);
              return true;
            };
            co_await db_.run(mark);
            log::warning("keys: sweep " + who + " " + log::field("reason", r.reason));
          } else {
            log::warning("keys: sweep could not renew " + who + " " + log::field("reason", r.reason));
          }
        } catch (const std::exception& e) {
          log::warning("keys: sweep could not store the renewal of " + who + ": " + db::describe_error(e));
        }
        std::chrono::milliseconds next = spacing;
        if (r.retry_after) {
          const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(*r.retry_after);
          if (after > next) next = after;
        }
        co_await sweep_pause(next);
      }
      const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - round_start);
      if (spent < round) {
        const std::chrono::milliseconds rest = round - spent;
        co_await sweep_pause(rest);
      }
    }
  }

 public:
  void start_sweep() {
    asio::co_spawn(io_, renewal_sweep(), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error(std::string("keys: sweep stopped: ") + ex.what());
      }
    });
  }

 private:
  asio::awaitable<void> finish_in_flight() {
    const auto deadline = std::chrono::steady_clock::now() + sync_.shutdown_timeout;
    asio::steady_timer t(io_);
    while (in_flight_ > 0 && std::chrono::steady_clock::now() < deadline) {
      t.expires_after(50ms);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (in_flight_ == 0) co_return;
    // Hand the unfinished events back now rather than when the lease runs out; a sync that still
    // finishes later finds the events no longer ours and writes nothing.
    std::vector<sync_job> unfinished;
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
                 std::to_string(sync_.shutdown_timeout.count()) + "s: handed back " +
                 std::to_string(handed_back) + " to the queue");
    abandoned_ = true;
  }

 public:
  bool abandoned() const { return abandoned_; }

 private:

  const config::config& cfg_;
  config::sync_config sync_;  // the [sync] limits in force: SIGHUP may change them
  const run_options& opts_;
  asio::io_context& io_;
  db::db_pool& db_;
  store_gateway& gateway_;
  entra_token_cache& tokens_;
  const db::key_codec& codec_;
  ops::metrics& metrics_;
  std::string owner_;
  asio::steady_timer wake_timer_;
  asio::steady_timer sweep_timer_{io_};
  asio::steady_timer watchdog_timer_{io_};
  asio::steady_timer gauge_timer_{io_};
  asio::steady_timer lease_timer_{io_};
  asio::steady_timer prune_timer_{io_};
  asio::steady_timer backfill_timer_{io_};
  bool db_reachable_ = true;
  std::mt19937_64 rng_;
  std::deque<pending_completion*> completions_;  // syncs waiting for the next group commit
  bool writing_completions_ = false;
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
  bool finished_ = false;  // dispatch is over: nothing in flight is ours any more
  std::shared_ptr<std::set<const sync_job*>> in_flight_jobs_ =
      std::make_shared<std::set<const sync_job*>>();
};

// Keys whose new value only takes effect after a restart.
std::vector<std::string> needs_restart(const config::config& a, const config::config& b) {
  std::vector<std::string> out;
  auto check = [&](const char* key, bool same) {
    if (!same) out.emplace_back(key);
  };
  check("[database] url", a.database.url == b.database.url);
  check("[database] pool_size", a.database.pool_size == b.database.pool_size);
  check("[database] statement_timeout", a.database.statement_timeout == b.database.statement_timeout);
  check("[database] keepalive", a.database.keepalive == b.database.keepalive);
  check("[store] player_requests", a.store.player_requests == b.store.player_requests);
  check("[store] player_window", a.store.player_window == b.store.player_window);
  check("[store] max_requests_per_second", a.store.max_requests_per_second == b.store.max_requests_per_second);
  check("[entra] tenant_id", a.entra.tenant_id == b.entra.tenant_id);
  check("[entra] client_id", a.entra.client_id == b.entra.client_id);
  check("[entra] client_secret_file", a.entra.client_secret_file == b.entra.client_secret_file);
  check("[entra] token_url", a.effective_token_url() == b.effective_token_url());
  check("[entra] audience", a.entra.audience == b.entra.audience);
  check("[entra] refresh_before", a.entra.refresh_before == b.entra.refresh_before);
  check("[store] collections_url", a.store.collections_url == b.store.collections_url);
  check("[store] purchase_url", a.store.purchase_url == b.store.purchase_url);
  check("[store] ca_file", a.store.ca_file == b.store.ca_file);
  check("[store] product_types", a.store.product_types == b.store.product_types);
  check("[store] max_page_size", a.store.max_page_size == b.store.max_page_size);
  check("[store] connect_timeout", a.store.connect_timeout == b.store.connect_timeout);
  check("[store] request_timeout", a.store.request_timeout == b.store.request_timeout);
  check("[store] max_connections_per_host", a.store.max_connections_per_host == b.store.max_connections_per_host);
  check("[store] max_pages", a.store.max_pages == b.store.max_pages);
  check("[store] max_collection_bytes", a.store.max_collection_bytes == b.store.max_collection_bytes);
  check("[sync] watermark_overlap", a.sync.watermark_overlap == b.sync.watermark_overlap);
  check("[sync] max_inline_wait", a.sync.max_inline_wait == b.sync.max_inline_wait);
  check("[keys] renew_after", a.keys.renew_after == b.keys.renew_after);
  check("[keys] renew_before_expiry", a.keys.renew_before_expiry == b.keys.renew_before_expiry);
  check("[keys] keep_alive_for", a.keys.keep_alive_for == b.keys.keep_alive_for);
  check("[keys] sweep_interval", a.keys.sweep_interval == b.keys.sweep_interval);
  check("[keys] sweep_batch", a.keys.sweep_batch == b.keys.sweep_batch);
  check("[keys] refusal_burst_players", a.keys.refusal_burst_players == b.keys.refusal_burst_players);
  check("[keys] refusal_burst_window", a.keys.refusal_burst_window == b.keys.refusal_burst_window);
  check("[security] key_encryption_key_file",
        a.security.key_encryption_key_file == b.security.key_encryption_key_file);
  return out;
}

// SIGHUP: re-read the config file and the client secret. The log level, the secret and the [sync]
// limits (concurrency, poll_interval, max_attempts, retry_base, retry_cap, shutdown_timeout) take
// effect at once; every other changed key is named as needing a restart. A broken file changes nothing.
void reload(const config::config& running, entra_token_cache& tokens, daemon& d, db::key_codec& codec) {
  ops::notify_reloading();
  try {
    auto fresh = config::load_config(running.source_path);
    std::vector<std::string> applied;
    log::level level;
    if (log::parse_level(fresh.log.level, level) && level != log::current_level()) {
      applied.push_back("log level " + std::string(log::to_string(log::current_level())) + " -> " +
                        std::string(log::to_string(level)));
      log::set_level(level);
    }
    for (auto& change : d.apply_sync_limits(fresh.sync)) applied.push_back(std::move(change));
    tokens.set_client_secret(config::read_secret_file(running.entra.client_secret_file, "entra.client_secret_file"));
    applied.emplace_back("client secret re-read");
    if (!running.security.key_encryption_key_file.empty()) {
      codec.replace_ring(store::keyring::load_file(running.security.key_encryption_key_file));
      applied.push_back("key ring re-read (sealing with key id " + codec.current_key_id() + ")");
    }
    std::string line = "reloaded " + running.source_path + ": applied: ";
    for (std::size_t i = 0; i < applied.size(); ++i) line += (i ? ", " : "") + applied[i];
    auto restart = needs_restart(running, fresh);
    if (!restart.empty()) {
      line += "; changed but needs a restart: ";
      for (std::size_t i = 0; i < restart.size(); ++i) line += (i ? ", " : "") + restart[i];
    }
    log::info(line);
  } catch (const std::exception& e) {
    log::error(std::string("reload failed, keeping the running configuration: ") + e.what());
  }
  ops::notify_ready("running");
}

}  // namespace

int run_daemon(const config::config& cfg, const run_options& opts) {
  // Fatal setup problems are found before any work starts.
  std::string secret;
  db::key_codec codec;
  try {
    secret = config::read_secret_file(cfg.entra.client_secret_file, "entra.client_secret_file");
    if (!cfg.security.key_encryption_key_file.empty()) {
      codec.replace_ring(store::keyring::load_file(cfg.security.key_encryption_key_file));
      log::info("keys: stored keys are encrypted " + log::field("key_id", codec.current_key_id()));
    }
  } catch (const std::exception& e) {
    log::error(e.what());
    return 1;
  }
  try {
    auto c = db::open_connection(cfg.database.url, cfg.database.statement_timeout);
    const int have = db::current_schema_version(*c);
    const int want = db::latest_schema_version();
    if (have < want) {
      log::error("the database schema is at version " + std::to_string(have) + ", this daemon needs " +
                 std::to_string(want) + ": run `entitlement-syncd migrate` first");
      return 1;
    }
  } catch (const std::exception& e) {
    log::error(std::string("cannot use the database: ") + e.what());
    return 1;
  }

  asio::io_context io(1);
  std::unique_ptr<asio::ssl::context> tls;
  try {
    tls = std::make_unique<asio::ssl::context>(net::make_client_tls_context(cfg.store.ca_file));
  } catch (const std::exception& e) {
    log::error(std::string("TLS setup failed: ") + e.what());
    return 1;
  }
  net::client_options copts;
  copts.connect_timeout = cfg.store.connect_timeout;
  copts.request_timeout = cfg.store.request_timeout;
  copts.max_connections_per_host = static_cast<std::size_t>(cfg.store.max_connections_per_host);
  copts.max_idle_per_host = copts.max_connections_per_host;
  copts.user_agent = std::string("entitlement-syncd/") + ESD_VERSION_STRING;
  net::https_client client(io.get_executor(), *tls, copts);
  ops::metrics registry;
  metric::describe_all(registry);
  store_gateway gateway(client, cfg, &registry);
  entra_token_cache tokens(gateway, std::move(secret));
  db::db_pool db(cfg.database.url, cfg.database.pool_size, cfg.database.statement_timeout, cfg.database.keepalive);

  daemon d(cfg, opts, io, db, gateway, tokens, codec, registry);
  db::notification_listener listener(cfg.database.url, cfg.database.keepalive,
                                    [&io, &d] { asio::post(io, [&d] { d.wake(); }); });

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&d](const boost::system::error_code& ec, int sig) {
    if (!ec) d.request_stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
  });

  log::info("started " + log::field("owner", d.owner()) + " " + log::field("concurrency", cfg.sync.concurrency) +
            (opts.drain ? " mode=drain" : " mode=run"));
  asio::signal_set hangup(io, SIGHUP);
  std::function<void()> on_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      reload(cfg, tokens, d, codec);
      on_hangup();
    });
  };
  on_hangup();

  std::unique_ptr<ops::metrics_server> metrics_server;
  if (!cfg.metrics.listen.empty()) {
    try {
      // Ready: the database answers, the listener is connected, and the last Entra token request worked.
      metrics_server = std::make_unique<ops::metrics_server>(
          io.get_executor(), cfg.metrics.listen, registry, [&d, &listener, &tokens]() -> ops::health_check {
            if (!d.db_reachable()) return {false, "database unreachable"};
            if (!listener.connected()) return {false, "database notifications not connected"};
            if (!tokens.last_failure().empty()) return {false, "Entra token: " + tokens.last_failure()};
            return {true, "ready"};
          });
      metrics_server->start();
      log::info("metrics: listening " + log::field("address", cfg.metrics.listen) + " " +
                log::field("port", static_cast<long long>(metrics_server->port())));
    } catch (const std::exception& e) {
      log::error(std::string("metrics: ") + e.what());
      return 1;
    }
    d.start_gauges();
  }
  if (!opts.drain) d.start_sweep();
  d.start_housekeeping();
  d.start_watchdog();
  ops::notify_ready("running: " + log::field("concurrency", cfg.sync.concurrency));
  int status = 1;
  asio::co_spawn(io, d.dispatch(), [&](std::exception_ptr e, int s) {
    status = s;
    if (e) {
      status = 1;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error(std::string("fatal: ") + ex.what());
      }
    }
    signals.cancel();
    hangup.cancel();
    if (metrics_server) metrics_server->stop();
    client.close_idle();
    // Syncs that outlived shutdown_timeout were handed back: don't wait for them.
    if (d.abandoned()) io.stop();
  });
  io.run();
  log::info("stopped " + log::field("status", status));
  return status;
}

}  // namespace esd::sync
