// The key_uploads queue after the claim: how events end, leases, pruning, and the stored keys.
#include "db/queue.hpp"

#include <algorithm>

#include "db/pg_array.hpp"
#include "db/pg_timestamp.hpp"
#include "store/error_text.hpp"
#include "store/store_id_key.hpp"

namespace esd::db {

namespace {

const char* column(store::key_kind kind) {
  return kind == store::key_kind::collections ? "collections_key" : "purchase_key";
}

// SQL for stored_key_fingerprint of a user_keys column.
std::string fingerprint_of(const std::string& col) { return "encode(sha256(convert_to(" + col + ", 'UTF8')), 'hex')"; }

void mark_key_dead_in(pqxx::transaction_base& tx, const std::string& user_id, store::key_kind kind,
                      const std::string& fingerprint, const std::string& reason) {
  const std::string col = column(kind);
  // Only the key that was refused: a newer upload stays alive.
  tx.exec_params("UPDATE entitlement_sync.user_keys SET " + col + "_dead_at = now(), " + col +
                     "_dead_reason = $3 WHERE user_id = $1 AND " + fingerprint_of(col) + " = $2 AND " + col +
                     "_dead_at IS NULL",
                 user_id, fingerprint, store::bounded_error(reason));
}

// What a coalesced event other than the newest records: a long reason is stored once per sync (on the
// newest event and the player), not once per event, so a flood of uploads cannot multiply it.
std::string coalesced_error(const std::string& bounded, std::int64_t newest_event) {
  constexpr std::size_t short_enough = 256;
  if (bounded.size() <= short_enough) return bounded;
  return "the same failure as event " + std::to_string(newest_event) +
         " of this player, whose last_error and user_status.last_error give the reason";
}

}  // namespace

void mark_key_dead(pqxx::connection& c, const std::string& user_id, store::key_kind kind,
                   const std::string& fingerprint, const std::string& reason) {
  pqxx::work tx(c);
  mark_key_dead_in(tx, user_id, kind, fingerprint, reason);
  tx.exec_params(
      "UPDATE entitlement_sync.users SET last_error = $2, last_error_at = now() WHERE user_id = $1", user_id,
      store::bounded_error(reason));
  tx.commit();
}

bool store_renewed_key(pqxx::connection& c, const std::string& user_id, store::key_kind kind,
                       const std::string& old_fingerprint, const std::string& new_key, store::store_time issued_at,
                       store::store_time expires_at) {
  const std::string col = column(kind);
  pqxx::work tx(c);
  auto r = tx.exec_params("UPDATE entitlement_sync.user_keys SET " + col + " = $3, " + col +
                              "_issued_at = $4::timestamptz, " + col + "_expires_at = $5::timestamptz, " + col +
                              "_renewed_at = now(), updated_at = now() WHERE user_id = $1 AND " + fingerprint_of(col) + " = $2",
                          user_id, old_fingerprint, new_key, to_pg_timestamptz(issued_at),
                          to_pg_timestamptz(expires_at));
  tx.commit();
  return r.affected_rows() == 1;
}

std::vector<key_due> keys_due_for_renewal(pqxx::connection& c, std::chrono::seconds renew_after,
                                          std::chrono::seconds renew_before_expiry,
                                          std::chrono::seconds keep_alive_for, int limit,
                                          const key_codec* codec) {
  pqxx::read_transaction tx(c);
  std::vector<key_due> out;
  for (auto kind : {store::key_kind::collections, store::key_kind::purchase}) {
    const std::string col = column(kind);
    auto rows = tx.exec_params(
        "SELECT k.user_id, k." + col + ", k." + col + "_expires_at FROM entitlement_sync.user_keys k "
        "JOIN entitlement_sync.users u USING (user_id) "
        "WHERE k." + col + " IS NOT NULL AND k." + col + "_dead_at IS NULL AND k." + col + "_expires_at > now() "
        "  AND (k." + col + "_issued_at < now() - make_interval(secs => $1) "
        "       OR k." + col + "_expires_at < now() + make_interval(secs => $2)) "
        "  AND u.last_upload_at > now() - make_interval(secs => $3) "
        "  AND NOT EXISTS (SELECT 1 FROM entitlement_sync.key_uploads q "
        "                  WHERE q.user_id = k.user_id AND q.state = 'running') "
        "ORDER BY k." + col + "_expires_at LIMIT $4",
        static_cast<double>(renew_after.count()), static_cast<double>(renew_before_expiry.count()),
        static_cast<double>(keep_alive_for.count()), limit);
    for (const auto& row : rows) {
      const auto stored = row[1].as<std::string>();
      key_due d{row[0].as<std::string>(), kind, stored_key_fingerprint(stored), {}, from_pg_timestamptz(row[2])};
      std::string error;
      d.key = codec ? codec->from_stored(stored, d.user_id, kind, error).value_or(std::string()) : stored;
      out.push_back(std::move(d));
    }
  }
  std::sort(out.begin(), out.end(), [](const key_due& a, const key_due& b) { return a.expires_at < b.expires_at; });
  if (out.size() > static_cast<std::size_t>(limit)) out.resize(static_cast<std::size_t>(limit));
  return out;
}

std::optional<double> seconds_until_next_due(pqxx::connection& c) {
  pqxx::read_transaction tx(c);
  // Not greatest(0, ...): it ignores NULL, which would turn "nothing waits" into "due now".
  auto row = tx.exec1(
      "SELECT extract(epoch FROM min(run_after) - now())::float8 "
      "FROM entitlement_sync.key_uploads WHERE state = 'pending'");
  if (row[0].is_null()) return std::nullopt;
  return std::max(0.0, row[0].as<double>());
}

queue_stats read_queue_stats(pqxx::connection& c) {
  pqxx::read_transaction tx(c);
  queue_stats q;
  auto row = tx.exec1(
      "SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'running'), "
      "  coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'pending' "
      "    AND run_after <= now())), 0)::float8, count(*) FILTER (WHERE state = 'failed') "
      "FROM entitlement_sync.key_uploads WHERE state IN ('pending', 'running', 'failed')");
  q.waiting = row[0].as<long long>();
  q.running = row[1].as<long long>();
  q.oldest_waiting_seconds = row[2].as<double>();
  q.failed = row[3].as<long long>();
  q.keys_expiring_7d = tx.exec1(
      "SELECT count(*) FILTER (WHERE collections_key IS NOT NULL AND collections_key_dead_at IS NULL "
      "    AND collections_key_expires_at BETWEEN now() AND now() + interval '7 days') + "
      "  count(*) FILTER (WHERE purchase_key IS NOT NULL AND purchase_key_dead_at IS NULL "
      "    AND purchase_key_expires_at BETWEEN now() AND now() + interval '7 days') "
      "FROM entitlement_sync.user_keys")[0].as<long long>();
  return q;
}

bool hand_back_job(pqxx::connection& c, const sync_job& job, const std::string& owner) {
  pqxx::work tx(c);
  auto r = tx.exec_params(
      "UPDATE entitlement_sync.key_uploads SET state = 'pending', claimed_by = NULL, lease_until = NULL, "
      "  lease_id = NULL, attempts = greatest(attempts - 1, 0) "
      "WHERE event_id = ANY($1::bigint[]) AND state = 'running' AND claimed_by = $2 AND lease_id = $3",
      to_pg_bigint_array(job.event_ids), owner, job.lease_id);
  tx.commit();
  return r.affected_rows() > 0;
}

fail_outcome fail_job(pqxx::connection& c, const sync_job& job, const std::string& owner, const std::string& reason,
              std::optional<std::chrono::system_clock::time_point> retry_at, int max_attempts,
              std::optional<store::key_kind> dead_key) {
  const bool final = !retry_at || job.attempts >= max_attempts;
  pqxx::work tx(c);
  pqxx::result r;
  // Escaped and bounded: the reason may quote a hostile answer or key, and the database refuses some bytes.
  const std::string bounded = store::bounded_error(reason);
  std::string user_error = bounded;
  const std::int64_t newest = job.event_ids.back();
  if (final) {
    if (retry_at) user_error += " (gave up after " + std::to_string(job.attempts) + " attempts)";
    r = tx.exec_params(
        "UPDATE entitlement_sync.key_uploads SET state = 'failed', finished_at = now(), lease_until = NULL, "
        "  last_error = CASE WHEN event_id = $5 THEN $3 ELSE $6 END "
        "WHERE event_id = ANY($1::bigint[]) AND state = 'running' AND claimed_by = $2 AND lease_id = $4",
        to_pg_bigint_array(job.event_ids), owner, user_error, job.lease_id, newest,
        coalesced_error(user_error, newest));
  } else {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(retry_at->time_since_epoch()).count();
    auto when = to_pg_timestamptz(store::store_time{micros});
    user_error += "; will retry at " + store::format_utc(store::store_time{micros});
    r = tx.exec_params(
        "UPDATE entitlement_sync.key_uploads SET state = 'pending', claimed_by = NULL, lease_until = NULL, "
        "  lease_id = NULL, run_after = $3::timestamptz, last_error = CASE WHEN event_id = $6 THEN $4 ELSE $7 END "
        "WHERE event_id = ANY($1::bigint[]) AND state = 'running' AND claimed_by = $2 AND lease_id = $5",
        to_pg_bigint_array(job.event_ids), owner, when, bounded, job.lease_id, newest,
        coalesced_error(bounded, newest));
  }
  if (r.affected_rows() == 0) return fail_outcome::lost;  // no longer ours: leave the other outcome alone
  if (dead_key) {
    if (const auto& key = job.key_of(*dead_key).fingerprint) mark_key_dead_in(tx, job.user_id, *dead_key, *key, reason);
  }
  tx.exec_params(
      "UPDATE entitlement_sync.users SET last_error = $2, last_error_at = now() WHERE user_id = $1",
      job.user_id, user_error);
  tx.commit();
  return final ? fail_outcome::failed : fail_outcome::retry;
}

std::vector<std::int64_t> extend_leases(pqxx::connection& c, const std::string& owner,
                                        const std::vector<std::int64_t>& lease_ids, std::chrono::seconds lease) {
  if (lease_ids.empty()) return {};
  pqxx::work tx(c);
  auto kept = tx.exec_params(
      "WITH kept AS (UPDATE entitlement_sync.key_uploads SET lease_until = now() + make_interval(secs => $3) "
      "  WHERE state = 'running' AND claimed_by = $1 AND lease_id = ANY($2::bigint[]) RETURNING lease_id) "
      "SELECT DISTINCT lease_id FROM kept",
      owner, to_pg_bigint_array(lease_ids), static_cast<double>(lease.count()));
  tx.commit();
  std::vector<std::int64_t> lost;
  for (auto id : lease_ids) {
    bool found = false;
    for (const auto& row : kept) found = found || row[0].as<std::int64_t>() == id;
    if (!found) lost.push_back(id);
  }
  return lost;
}

long long prune_events(pqxx::connection& c, std::chrono::seconds keep_done, std::chrono::seconds keep_failed,
                       int batch) {
  long long deleted = 0;
  for (const auto& [state, keep] : {std::pair{"done", keep_done}, std::pair{"failed", keep_failed}}) {
    if (keep.count() == 0 || deleted >= batch) continue;
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "DELETE FROM entitlement_sync.key_uploads WHERE event_id IN ("
        "  SELECT event_id FROM entitlement_sync.key_uploads "
        "  WHERE state = $1 AND finished_at < now() - make_interval(secs => $2) "
        "  ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED)",
        std::string(state), static_cast<double>(keep.count()), batch - static_cast<int>(deleted));
    tx.commit();
    deleted += r.affected_rows();
  }
  return deleted;
}

int feed_backfill(pqxx::connection& c, int rate) {
  pqxx::work tx(c);
  auto n = tx.exec_params1("SELECT entitlement_sync.feed_backfill($1)", rate)[0].as<int>();
  tx.commit();
  return n;
}

}  // namespace esd::db
