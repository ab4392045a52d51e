#include "sync/job_recorder.hpp"

#include "db/db_error.hpp"
#include "ops/log.hpp"
#include "store/error_text.hpp"
#include "sync/daemon_metrics.hpp"

namespace esd::sync {

namespace asio = boost::asio;

namespace {

const char* outcome_word(db::fail_outcome ended) {
  return ended == db::fail_outcome::failed ? "failed" : ended == db::fail_outcome::retry ? "retry" : "lost-lease";
}

const char* outcome_label(db::fail_outcome ended) {
  return ended == db::fail_outcome::lost ? "lost_lease" : outcome_word(ended);
}

}  // namespace

std::chrono::milliseconds job_recorder::backoff(int attempt, std::optional<std::chrono::seconds> retry_after) {
  return retry_delay(attempt, cfg_.sync.retry_base, cfg_.sync.retry_cap, retry_after, rng_);
}

// Renewed keys first, whatever the outcome: after a renewal the old key may no longer work.
asio::awaitable<void> job_recorder::store_keys(const db::sync_job& job, const player_sync_result& report) {
  for (const auto& r : report.renewed) {
    const auto& old_fingerprint =
        r.kind == store::key_kind::collections ? job.collections.fingerprint : job.purchase.fingerprint;
    if (!old_fingerprint) continue;
    auto store_key = [&r, old = *old_fingerprint, fresh = codec_.to_stored(r.new_key, job.user_id, r.kind),
                      user = job.user_id](pqxx::connection& c) {
      return db::store_renewed_key(c, user, r.kind, old, fresh, r.issued_at, r.expires_at);
    };
    co_await db_.run(store_key);
  }
  for (const auto& d : report.dead) {
    const auto& fingerprint =
        d.kind == store::key_kind::collections ? job.collections.fingerprint : job.purchase.fingerprint;
    if (!fingerprint) continue;
    auto mark = [&d, fp = *fingerprint, user = job.user_id](pqxx::connection& c) {
      db::mark_key_dead(c, user, d.kind, fp, d.reason);
      return true;
    };
    co_await db_.run(mark);
  }
}

asio::awaitable<void> job_recorder::finish_job(const db::sync_job& job, player_sync_result& report,
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
                       log::field("first_event", job.event_ids.front()) + " " + log::field("attempt", job.attempts) +
                       " " + (job.full_sync ? "full=1 " : "");
  std::optional<std::string> refused;  // what the database said when it refused the write
  try {
    co_await store_keys(job, report);
    if (auto* ok = std::get_if<db::sync_outcome>(&result)) {
      if (report.subscriptions_failure) {
        const auto& f = *report.subscriptions_failure;
        ok->subscriptions_error = f.reason;
        if (f.kind == failure_kind::transient)
          ok->subscriptions_retry_at = std::chrono::system_clock::now() + backoff(job.attempts, f.retry_after);
        log::warning("subscriptions " + log::field("user", job.user_id) + " " + log::field("reason", f.reason));
        metrics_.inc(metric::subscription_reads, {{"outcome", "failed"}});
      } else if (ok->subscriptions) {
        metrics_.inc(metric::subscription_reads, {{"outcome", "ok"}});
      }
      bool mine = co_await commits_.complete(job, *ok);
      if (!mine) metrics_.inc(metric::leases_lost);
      log::info("sync " + common + log::field("items", static_cast<long long>(ok->items.size())) + " " +
                log::field("pages", ok->pages) + " " +
                (ok->throttled_waits ? log::field("throttled_waits", ok->throttled_waits) + " " : std::string()) +
                (ok->items_refused ? log::field("refused", ok->items_refused) + " " : std::string()) +
                log::field("duration_ms", static_cast<long long>(ms.count())) + " " +
                (mine ? "outcome=ok" : "outcome=lost-lease"));
      metrics_.inc(metric::events, {{"outcome", mine ? "done" : "lost_lease"}});
      if (mine) metrics_.inc(metric::items_written, {}, static_cast<double>(ok->items.size()));
    } else {
      auto& failure = std::get<sync_failure>(result);
      std::optional<std::chrono::system_clock::time_point> retry_at;
      if (failure.kind == failure_kind::transient)
        retry_at = std::chrono::system_clock::now() + backoff(job.attempts, failure.retry_after);
      auto fail = [&job, &failure, &retry_at, owner = owner_, max = cfg_.sync.max_attempts](pqxx::connection& c) {
        return db::fail_job(c, job, owner, failure.reason, retry_at, max, failure.dead_key);
      };
      const auto ended = co_await db_.run(fail);
      auto line = "sync " + common + log::field("duration_ms", static_cast<long long>(ms.count())) + " " +
                  "outcome=" + outcome_word(ended) + " " + log::field("reason", failure.reason);
      if (ended == db::fail_outcome::retry) log::info(line); else log::warning(line);
      if (ended == db::fail_outcome::lost) metrics_.inc(metric::leases_lost);
      metrics_.inc(metric::events, {{"outcome", outcome_label(ended)}});
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
asio::awaitable<void> job_recorder::record_refused_outcome(const db::sync_job& job, const std::string& common,
                                                           const std::string& error) {
  const std::string reason =
      "the database refused to store this sync's outcome: " + store::excerpt(error, 300);
  const auto retry_at = std::chrono::system_clock::now() + backoff(job.attempts, std::nullopt);
  try {
    auto fail = [&job, &reason, retry_at, owner = owner_, max = cfg_.sync.max_attempts](pqxx::connection& c) {
      return db::fail_job(c, job, owner, reason, retry_at, max);
    };
    const auto ended = co_await db_.run(fail);
    log::warning("sync " + common + "outcome=" + outcome_word(ended) + " " + log::field("reason", reason));
    metrics_.inc(metric::events, {{"outcome", outcome_label(ended)}});
    metrics_.inc(metric::events_failed, {{"reason", "db_refused"}});
  } catch (const std::exception& e) {
    log::error("sync " + common + "outcome=unrecorded " + log::field("error", db::describe_error(e)));
  }
}

asio::awaitable<void> job_recorder::record_request(const db::sync_job& job, const request_report& r) {
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
      result.retry_at = std::chrono::system_clock::now() + backoff(r.attempts_before + 1, r.failure->retry_after);
    } else {
      result.end = db::request_end::failed;
    }
  }
  const bool grant = r.kind == request_kind::grant;
  const char* what = grant ? "grant" : "consume";
  std::string state;
  try {
    auto write = [result, user = job.user_id, grant, max = cfg_.sync.max_attempts](pqxx::connection& c) {
      return grant ? db::record_grant(c, user, result, max) : db::record_consume(c, user, result, max);
    };
    state = co_await db_.run(write);
  } catch (const std::exception& e) {
    // The row stays pending; its next try sends the same idempotency key, so nothing happens twice.
    log::error(std::string(what) + " " + log::field("user", job.user_id) + " " + log::field("request", r.request_id) +
               " outcome=unrecorded " + log::field("error", db::describe_error(e)));
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

}  // namespace esd::sync
