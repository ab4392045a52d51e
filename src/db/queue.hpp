// The key_uploads queue: claiming due events, and recording how they ended.
//
// A claim takes every due event of up to `limit` players that nobody is syncing, folds each player's
// events into one job (newest keys win, full if any asked for full), moves the uploaded keys out of the
// queue into user_keys, and marks the events running under our name with a lease. Claims are serialized
// by a transaction-scoped advisory lock, so two daemons can never start the same player at once.
// Every transaction here is short; none is held across a Store call.
#pragma once

#include <pqxx/pqxx>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/key_codec.hpp"
#include "store/store_date.hpp"
#include "store/store_id_key.hpp"
#include "db/sync_job.hpp"

namespace esd::db {

struct claim_options {
  int limit = 64;                       // players
  std::string owner;                    // this daemon's name in claimed_by
  std::chrono::seconds lease{60};
  int max_attempts = 8;                 // events whose daemon died this often end failed instead of retrying
  std::string expected_client_id;       // a key made for another Entra app is refused (InconsistentClientId)
  const key_codec* codec = nullptr;     // how user_keys holds keys; nullptr: plain text
};

// One upload never fails the claim: a key store::check_uploaded_key refuses, a user_id check_user_id refuses,
// or keys the database refuses (the claim is then taken again, each player's keys stored on its own) become
// that player's key_problems, and only its sync fails.
std::vector<sync_job> claim_jobs(pqxx::connection& c, const claim_options& o);

// How one grant or consume request ended this time.
enum class request_end { done, failed, retry };
struct request_result {
  std::int64_t request_id = 0;
  request_end end = request_end::failed;
  std::string error;  // why it failed (also recorded while it waits for a retry)
  std::optional<std::chrono::system_clock::time_point> retry_at;
  std::string order_state, line_item_id;  // grants
};

// Records a grant's or a consume's outcome on its row (only while it is pending: a late duplicate changes
// nothing). A retry that still has attempts left waits until retry_at, with an event queued for then;
// otherwise it ends failed. Returns the row's state afterwards ("pending", "done", "failed"), or "" when the
// row was no longer pending.
std::string record_grant(pqxx::connection& c, const std::string& user_id, const request_result& r, int max_attempts);
std::string record_consume(pqxx::connection& c, const std::string& user_id, const request_result& r,
                           int max_attempts);

// Writes the items, the new watermark and the events' completion in one transaction. Returns false (and
// writes nothing) when the events are no longer ours: their lease ran out and another worker took them.
// Subscriptions are written in the same transaction; a failed subscriptions read is recorded on the player and,
// when transient, tried again by an event at subscriptions_retry_at while fewer than max_attempts reads in a
// row have failed.
bool complete_job(pqxx::connection& c, const sync_job& job, const std::string& owner, const sync_outcome& o,
                  int max_attempts = 8);

// The same for several jobs in one transaction (a group commit): set-based statements for all of them.
// Returns, per job, whether it was still ours (a job that was not writes nothing; the others do).
std::vector<bool> complete_jobs(pqxx::connection& c, const std::vector<const sync_job*>& jobs,
                                const std::vector<const sync_outcome*>& outcomes, const std::string& owner,
                                int max_attempts = 8);

// Records a failure on the events and on the player. With retry_at, the events wait until then (unless
// attempts reached max_attempts, which makes the failure final); without it the failure is final.
// Returns how the events ended: waiting for a retry, failed for good, or not ours any more (lost lease:
// nothing written).
// dead_key marks the player's stored key of that kind as refused by the Store: it is never sent again
// until a new one is uploaded.
enum class fail_outcome { retry, failed, lost };
fail_outcome fail_job(pqxx::connection& c, const sync_job& job, const std::string& owner, const std::string& reason,
              std::optional<std::chrono::system_clock::time_point> retry_at, int max_attempts,
              std::optional<store::key_kind> dead_key = std::nullopt);

// A renewed key (in its stored form) replaces the stored one, unless a newer upload replaced it meanwhile
// (the column's stored_key_fingerprint is no longer old_fingerprint). Returns true when stored.
bool store_renewed_key(pqxx::connection& c, const std::string& user_id, store::key_kind kind,
                       const std::string& old_fingerprint, const std::string& new_key, store::store_time issued_at,
                       store::store_time expires_at);

// Marks the stored key with this stored_key_fingerprint dead outside a sync (the renewal sweep).
void mark_key_dead(pqxx::connection& c, const std::string& user_id, store::key_kind kind,
                   const std::string& fingerprint, const std::string& reason);

struct key_due {
  std::string user_id;
  store::key_kind kind;
  std::string fingerprint;  // stored_key_fingerprint of the column
  std::string key;     // plain; empty when it could not be opened
  std::optional<store::store_time> expires_at;
};

// Live keys of players seen within keep_alive_for that are due for renewal and not being synced right
// now, soonest expiry first.
std::vector<key_due> keys_due_for_renewal(pqxx::connection& c, std::chrono::seconds renew_after,
                                          std::chrono::seconds renew_before_expiry,
                                          std::chrono::seconds keep_alive_for, int limit,
                                          const key_codec* codec);

// Gives the events back to the queue untouched (shutdown): they do not count as an attempt.
bool hand_back_job(pqxx::connection& c, const sync_job& job, const std::string& owner);

// Extends the leases of events still running under these lease ids. Returns the lease ids that are no
// longer ours (taken up again elsewhere after the lease ran out).
std::vector<std::int64_t> extend_leases(pqxx::connection& c, const std::string& owner,
                                        const std::vector<std::int64_t>& lease_ids, std::chrono::seconds lease);

// Deletes up to `batch` events that finished (done) before keep_done, or failed before keep_failed (a zero
// duration keeps that kind forever), in one short transaction. Returns how many were deleted.
long long prune_events(pqxx::connection& c, std::chrono::seconds keep_done, std::chrono::seconds keep_failed,
                       int batch);

// Queues the next players of an open backfill (entitlement_sync.feed_backfill); returns how many.
int feed_backfill(pqxx::connection& c, int rate);

// Seconds until the earliest waiting event is due (0 if one is due now); nullopt when nothing waits.
std::optional<double> seconds_until_next_due(pqxx::connection& c);

struct queue_stats {
  long long waiting = 0;              // pending events
  long long running = 0;
  double oldest_waiting_seconds = 0;  // age of the oldest pending event that is due
  long long keys_expiring_7d = 0;     // live keys that expire within 7 days
  long long failed = 0;               // events retained in state failed
};
queue_stats read_queue_stats(pqxx::connection& c);

}  // namespace esd::db
