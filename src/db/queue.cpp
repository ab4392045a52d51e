#include "db/queue.hpp"

#include <algorithm>
#include <map>
#include <span>

#include "db/pg_array.hpp"
#include "db/pg_timestamp.hpp"
#include "ops/log.hpp"
#include "ops/error_text.hpp"
#include "store/json_fields.hpp"
#include "store/store_id_key.hpp"
#include "store/uploaded_key_check.hpp"

namespace esd::db {

namespace {

// pg_advisory_xact_lock key that serializes claims across daemons: "esd_claim".
constexpr long long claim_lock_key = 0x6573645f636c6169LL;

std::optional<store::store_time> optional_time(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return from_pg_timestamptz(f.c_str());
}

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
                 user_id, fingerprint, ops::bounded_error(reason));
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
      ops::bounded_error(reason));
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
      key_due d{row[0].as<std::string>(), kind, stored_key_fingerprint(stored), {}, optional_time(row[2])};
      std::string error;
      d.key = codec ? codec->from_stored(stored, d.user_id, kind, error).value_or(std::string()) : stored;
      out.push_back(std::move(d));
    }
  }
  std::sort(out.begin(), out.end(), [](const key_due& a, const key_due& b) { return a.expires_at < b.expires_at; });
  if (out.size() > static_cast<std::size_t>(limit)) out.resize(static_cast<std::size_t>(limit));
  return out;
}

namespace {

// A statement refused because of what a row holds (a value out of range, a constraint, a row too big for
// an index), rather than because of the connection or the server.
bool refused_by_data(const pqxx::sql_error& e) {
  const std::string_view state = e.sqlstate();
  return state.starts_with("22") || state.starts_with("23") || state.starts_with("54");
}

// The claim; with keys_one_by_one, each player's keys are stored in a savepoint of their own, and a player
// whose keys the database refuses keeps its old ones and gets the reason as a key problem.
std::vector<sync::sync_job> claim(pqxx::connection& c, const claim_options& o, bool keys_one_by_one) {
  pqxx::work tx(c);
  tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(claim_lock_key) + ")");

  // Events whose daemon died (lease ran out) go back to the queue, unless that has happened so often
  // that the event itself is the likely cause (a crash it provokes): then it ends failed.
  tx.exec_params(
      "UPDATE entitlement_sync.key_uploads SET "
      "  state = CASE WHEN attempts >= $1 THEN 'failed' ELSE 'pending' END, "
      "  finished_at = CASE WHEN attempts >= $1 THEN now() END, "
      "  last_error = CASE WHEN attempts >= $1 "
      "    THEN 'the daemon working on this event stopped before finishing, ' || attempts || ' times; gave up' "
      "    ELSE 'the daemon working on this event (' || coalesce(claimed_by, '?') || ') stopped before "
      "finishing; taken up again' END, "
      "  claimed_by = NULL, lease_until = NULL, lease_id = NULL "
      "WHERE state = 'running' AND lease_until < now()",
      o.max_attempts);

  // Players with a due event and no sync running: uploads and resyncs first, then backfill, oldest due
  // first. Each scan is an index range of key_uploads_waiting and bounded, so a deep backlog of one
  // player cannot starve the claim; that player's other events are picked up below.
  auto players = tx.exec_params(
      "SELECT user_id FROM ("
      "  SELECT q.user_id, min(q.priority) AS priority, min(q.run_after) AS due, min(q.event_id) AS first FROM ("
      "    (SELECT user_id, priority, run_after, event_id FROM entitlement_sync.key_uploads "
      "     WHERE state = 'pending' AND priority = 0 AND run_after <= now() "
      "     ORDER BY run_after, event_id LIMIT $1 * 8) "
      "    UNION ALL "
      "    (SELECT user_id, priority, run_after, event_id FROM entitlement_sync.key_uploads "
      "     WHERE state = 'pending' AND priority = 1 AND run_after <= now() "
      "     ORDER BY run_after, event_id LIMIT $1 * 8)) q "
      "  WHERE NOT EXISTS (SELECT 1 FROM entitlement_sync.key_uploads r "
      "                    WHERE r.user_id = q.user_id AND r.state = 'running') "
      "  GROUP BY q.user_id ORDER BY priority, due, first LIMIT $1) p",
      o.limit);
  if (players.empty()) {
    tx.commit();
    return {};
  }
  std::vector<std::string> user_ids;
  for (const auto& row : players) user_ids.push_back(row[0].as<std::string>());
  const std::string users_literal = to_pg_text_array(user_ids);

  auto events = tx.exec_params(
      "SELECT event_id, user_id, collections_key, purchase_key, full_sync, attempts "
      "FROM entitlement_sync.key_uploads WHERE user_id = ANY($1::text[]) AND state = 'pending' "
      "AND run_after <= now() ORDER BY user_id, event_id FOR UPDATE SKIP LOCKED",
      users_literal);

  const std::int64_t now_s = tx.exec1("SELECT extract(epoch FROM now())::bigint")[0].as<std::int64_t>();
  std::map<std::string, sync::sync_job> jobs;
  std::map<std::string, std::vector<store::key_upload>> uploads;
  std::vector<std::int64_t> all_ids;
  auto key_in = [](const pqxx::field& f) -> std::optional<std::string_view> {
    if (f.is_null()) return std::nullopt;
    return std::string_view(f.c_str(), f.size());
  };
  for (const auto& row : events) {
    auto id = row["event_id"].as<std::int64_t>();
    auto user = row["user_id"].as<std::string>();
    auto& job = jobs[user];
    job.user_id = user;
    job.event_ids.push_back(id);
    job.full_sync = job.full_sync || row["full_sync"].as<bool>();
    job.attempts = std::max(job.attempts, row["attempts"].as<int>() + 1);
    all_ids.push_back(id);
    uploads[user].push_back({id, key_in(row["collections_key"]), key_in(row["purchase_key"])});
  }

  // The keys each player may keep, all stored by one statement (rows in user order).
  struct key_row {
    std::string user;
    std::optional<store::kept_key> collections, purchase;
  };
  std::vector<key_row> rows;
  for (auto& [user, job] : jobs) {
    auto verdict = store::check_player_uploads(user, uploads[user], now_s, o.expected_client_id);
    job.key_problems = std::move(verdict.problems);
    if (verdict.collections || verdict.purchase)
      rows.push_back({user, std::move(verdict.collections), std::move(verdict.purchase)});
  }
  const auto store_keys = [&tx, &o](std::span<const key_row> k) {
    pg_array user, c, ci, ce, p, pi, pe;
    auto put = [&o](const std::string& user, const std::optional<store::kept_key>& key, store::key_kind kind,
                    pg_array& stored, pg_array& issued, pg_array& expires) {
      if (!key) {
        stored.null();
        issued.null();
        expires.null();
        return;
      }
      stored.text(o.codec ? o.codec->to_stored(key->key, user, kind) : key->key);
      issued.time(key->issued_at);
      expires.time(key->expires_at);
    };
    for (const auto& r : k) {
      user.text(r.user);
      put(r.user, r.collections, store::key_kind::collections, c, ci, ce);
      put(r.user, r.purchase, store::key_kind::purchase, p, pi, pe);
    }
    tx.exec_params(
        "INSERT INTO entitlement_sync.user_keys AS k (user_id, collections_key, collections_key_issued_at, "
        "  collections_key_expires_at, purchase_key, purchase_key_issued_at, purchase_key_expires_at) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], "
        "  $6::timestamptz[], $7::timestamptz[]) "
        "ON CONFLICT (user_id) DO UPDATE SET "
        "  collections_key = coalesce(EXCLUDED.collections_key, k.collections_key), "
        "  collections_key_issued_at = CASE WHEN EXCLUDED.collections_key IS NULL "
        "    THEN k.collections_key_issued_at ELSE EXCLUDED.collections_key_issued_at END, "
        "  collections_key_expires_at = CASE WHEN EXCLUDED.collections_key IS NULL "
        "    THEN k.collections_key_expires_at ELSE EXCLUDED.collections_key_expires_at END, "
        "  collections_key_dead_at = CASE WHEN EXCLUDED.collections_key IS NULL "
        "    THEN k.collections_key_dead_at END, "
        "  collections_key_dead_reason = CASE WHEN EXCLUDED.collections_key IS NULL "
        "    THEN k.collections_key_dead_reason END, "
        "  purchase_key = coalesce(EXCLUDED.purchase_key, k.purchase_key), "
        "  purchase_key_issued_at = CASE WHEN EXCLUDED.purchase_key IS NULL "
        "    THEN k.purchase_key_issued_at ELSE EXCLUDED.purchase_key_issued_at END, "
        "  purchase_key_expires_at = CASE WHEN EXCLUDED.purchase_key IS NULL "
        "    THEN k.purchase_key_expires_at ELSE EXCLUDED.purchase_key_expires_at END, "
        "  purchase_key_dead_at = CASE WHEN EXCLUDED.purchase_key IS NULL THEN k.purchase_key_dead_at END, "
        "  purchase_key_dead_reason = CASE WHEN EXCLUDED.purchase_key IS NULL "
        "    THEN k.purchase_key_dead_reason END, "
        "  updated_at = now()",
        user.take(), c.take(), ci.take(), ce.take(), p.take(), pi.take(), pe.take());
  };
  if (!keys_one_by_one) {
    if (!rows.empty()) store_keys(rows);
  } else {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      // Plain SAVEPOINT statements: libpqxx 6's subtransaction opens its savepoint only on exec(), not
      // on exec_params().
      tx.exec("SAVEPOINT player_keys");
      try {
        store_keys(std::span(rows).subspan(i, 1));
        tx.exec("RELEASE SAVEPOINT player_keys");
      } catch (const pqxx::sql_error& e) {
        if (!refused_by_data(e)) throw;
        tx.exec("ROLLBACK TO SAVEPOINT player_keys");
        jobs[rows[i].user].key_problems.push_back(
            "the keys uploaded for this player could not be stored: the database refused them (SQLSTATE " +
            e.sqlstate() + "); the game client must upload new keys");
      }
    }
  }

  // The queue rows stop holding keys the moment they are claimed.
  const auto lease_id = tx.exec1("SELECT nextval('entitlement_sync.lease_ids')")[0].as<std::int64_t>();
  tx.exec_params(
      "UPDATE entitlement_sync.key_uploads SET state = 'running', claimed_at = now(), claimed_by = $2, "
      "  lease_until = now() + make_interval(secs => $3), lease_id = $4, attempts = attempts + 1, "
      "  collections_key = NULL, purchase_key = NULL "
      "WHERE event_id = ANY($1::bigint[])",
      to_pg_bigint_array(all_ids), o.owner, static_cast<double>(o.lease.count()), lease_id);
  for (auto& [user, job] : jobs) job.lease_id = lease_id;
  tx.exec_params("UPDATE entitlement_sync.users SET last_attempt_at = now() WHERE user_id = ANY($1::text[])",
                 users_literal);

  auto state = tx.exec_params(
      "SELECT u.user_id, u.watermark, k.collections_key, k.collections_key_issued_at, "
      "  k.collections_key_expires_at, k.purchase_key, k.purchase_key_issued_at, k.purchase_key_expires_at, "
      "  to_char(k.collections_key_dead_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC (' || "
      "    k.collections_key_dead_reason || ')' AS collections_key_dead, "
      "  to_char(k.purchase_key_dead_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC (' || "
      "    k.purchase_key_dead_reason || ')' AS purchase_key_dead "
      "FROM entitlement_sync.users u LEFT JOIN entitlement_sync.user_keys k USING (user_id) "
      "WHERE u.user_id = ANY($1::text[])",
      users_literal);
  for (const auto& row : state) {
    auto it = jobs.find(row["user_id"].as<std::string>());
    if (it == jobs.end()) continue;
    auto& job = it->second;
    job.watermark = optional_time(row["watermark"]);
    // Each key held once: plain, and a fingerprint of the stored form for compare-and-set.
    auto open = [&](store::key_kind kind, sync::stored_key& k) {
      const std::string name = column(kind);
      const auto& f = row[name];
      if (!f.is_null()) {
        const std::string_view stored(f.c_str(), f.size());
        k.fingerprint = stored_key_fingerprint(stored);
        if (!o.codec || !store::is_sealed(stored)) {
          k.key.emplace(stored);
        } else {
          std::string error;
          k.key = o.codec->from_stored(std::string(stored), job.user_id, kind, error);
          if (!k.key && kind == store::key_kind::collections) job.key_problems.push_back(error);
        }
      }
      k.issued_at = optional_time(row[name + "_issued_at"]);
      k.expires_at = optional_time(row[name + "_expires_at"]);
      if (!row[name + "_dead"].is_null()) k.dead = row[name + "_dead"].as<std::string>();
    };
    open(store::key_kind::collections, job.collections);
    open(store::key_kind::purchase, job.purchase);
  }

  // The players' due grant and consume requests, carried out within this sync (bounded per claim; the
  // rest wait for the next event, which every retry queues).
  auto grants = tx.exec_params(
      "SELECT request_id, user_id, product_id, sku_id, availability_id, language, market, order_id::text, "
      "  dev_offer_id, quantity, attempts FROM entitlement_sync.grant_requests "
      "WHERE user_id = ANY($1::text[]) AND state = 'pending' AND run_after <= now() "
      "ORDER BY request_id LIMIT 1000",
      users_literal);
  for (const auto& row : grants) {
    auto it = jobs.find(row["user_id"].as<std::string>());
    if (it == jobs.end()) continue;
    sync::grant_task g;
    g.request_id = row["request_id"].as<std::int64_t>();
    g.product_id = row["product_id"].as<std::string>();
    g.sku_id = row["sku_id"].as<std::string>();
    g.availability_id = row["availability_id"].as<std::string>();
    g.language = row["language"].as<std::string>();
    g.market = row["market"].as<std::string>();
    g.order_id = row["order_id"].as<std::string>();
    if (!row["dev_offer_id"].is_null()) g.dev_offer_id = row["dev_offer_id"].as<std::string>();
    g.quantity = row["quantity"].as<int>();
    g.attempts = row["attempts"].as<int>();
    it->second.grants.push_back(std::move(g));
  }
  // A request naming a product reports the player's consumable item of it that still has a quantity (the
  // newest); the item found is kept on the row, so every retry reports the same item with the same
  // tracking id.
  auto consumes = tx.exec_params(
      "WITH due AS ("
      "  SELECT request_id FROM entitlement_sync.consume_requests "
      "  WHERE user_id = ANY($1::text[]) AND state = 'pending' AND run_after <= now() "
      "  ORDER BY request_id LIMIT 1000) "
      "UPDATE entitlement_sync.consume_requests c SET consumed_item_id = coalesce(c.consumed_item_id, c.item_id, "
      "  (SELECT e.item_id FROM entitlement_sync.entitlements e "
      "    WHERE e.user_id = c.user_id AND e.product_id = c.product_id AND e.status = 'Active' "
      "      AND coalesce(e.quantity, 1) > 0 "
      "    ORDER BY e.modified_date DESC, e.item_id LIMIT 1)) "
      "FROM due WHERE c.request_id = due.request_id "
      "RETURNING c.request_id, c.user_id, c.consumed_item_id, c.product_id, c.tracking_id::text, c.attempts",
      users_literal);
  for (const auto& row : consumes) {
    auto it = jobs.find(row["user_id"].as<std::string>());
    if (it == jobs.end()) continue;
    sync::consume_task t;
    t.request_id = row["request_id"].as<std::int64_t>();
    if (!row["consumed_item_id"].is_null()) t.item_id = row["consumed_item_id"].as<std::string>();
    if (!row["product_id"].is_null()) t.product_id = row["product_id"].as<std::string>();
    t.tracking_id = row["tracking_id"].as<std::string>();
    t.attempts = row["attempts"].as<int>();
    it->second.consumes.push_back(std::move(t));
  }
  for (auto& [user, job] : jobs) {
    auto by_id = [](const auto& a, const auto& b) { return a.request_id < b.request_id; };
    std::sort(job.grants.begin(), job.grants.end(), by_id);
    std::sort(job.consumes.begin(), job.consumes.end(), by_id);
  }
  tx.commit();

  std::vector<sync::sync_job> out;
  out.reserve(jobs.size());
  for (auto& [user, job] : jobs) out.push_back(std::move(job));
  return out;
}

}  // namespace

std::vector<sync::sync_job> claim_jobs(pqxx::connection& c, const claim_options& o) {
  try {
    return claim(c, o, false);
  } catch (const pqxx::sql_error& e) {
    if (!refused_by_data(e)) throw;
    // Only the code: the server's message can quote the refused row, keys included.
    log::warning("claim: the database refused a row of the batched claim (SQLSTATE " + e.sqlstate() +
                 "); claiming again with each player's keys stored on its own");
  }
  // A row the checks let through was refused: the cost of one player at a time is paid only now, so that
  // only that player's sync fails.
  return claim(c, o, true);
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

bool hand_back_job(pqxx::connection& c, const sync::sync_job& job, const std::string& owner) {
  pqxx::work tx(c);
  auto r = tx.exec_params(
      "UPDATE entitlement_sync.key_uploads SET state = 'pending', claimed_by = NULL, lease_until = NULL, "
      "  lease_id = NULL, attempts = greatest(attempts - 1, 0) "
      "WHERE event_id = ANY($1::bigint[]) AND state = 'running' AND claimed_by = $2 AND lease_id = $3",
      to_pg_bigint_array(job.event_ids), owner, job.lease_id);
  tx.commit();
  return r.affected_rows() > 0;
}

fail_outcome fail_job(pqxx::connection& c, const sync::sync_job& job, const std::string& owner, const std::string& reason,
              std::optional<std::chrono::system_clock::time_point> retry_at, int max_attempts,
              std::optional<store::key_kind> dead_key) {
  const bool final = !retry_at || job.attempts >= max_attempts;
  pqxx::work tx(c);
  pqxx::result r;
  // Escaped and bounded: the reason may quote a hostile answer or key, and the database refuses some bytes.
  const std::string bounded = ops::bounded_error(reason);
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

namespace esd::db {

namespace {

std::string record_request(pqxx::connection& c, const char* table, const char* kind, const std::string& user_id,
                           const request_result& r, int max_attempts) {
  pqxx::work tx(c);
  const char* end = r.end == request_end::done ? "done" : r.end == request_end::failed ? "failed" : "retry";
  std::optional<std::string> retry_at;
  if (r.retry_at)
    retry_at = std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(r.retry_at->time_since_epoch()).count());
  const bool grant = std::string_view(table) == "grant_requests";
  const std::string sql =
      std::string("UPDATE entitlement_sync.") + table + " SET attempts = attempts + 1, last_attempt_at = now(), "
      "  state = CASE WHEN $2 = 'done' THEN 'done' "
      "               WHEN $2 = 'failed' OR attempts + 1 >= $3 THEN 'failed' ELSE 'pending' END, "
      "  error = CASE WHEN $2 = 'done' THEN NULL "
      "               WHEN $2 = 'retry' AND attempts + 1 >= $3 "
      "                 THEN $4 || ' (gave up after ' || (attempts + 1) || ' attempts)' "
      "               ELSE $4 END, "
      "  completed_at = CASE WHEN $2 <> 'retry' OR attempts + 1 >= $3 THEN now() END, "
      "  run_after = coalesce(to_timestamp($5::float8 / 1e6), run_after) " +
      (grant ? std::string(", order_state = coalesce(nullif($6, ''), order_state), "
                           "  line_item_id = coalesce(nullif($7, ''), line_item_id) ")
             : std::string()) +
      "WHERE request_id = $1 AND state = 'pending' RETURNING state, run_after";
  const std::string error = ops::bounded_error(r.error);
  pqxx::result rows = grant ? tx.exec_params(sql, r.request_id, end, max_attempts, error, retry_at,
                                             ops::bounded_error(r.order_state), ops::bounded_error(r.line_item_id))
                            : tx.exec_params(sql, r.request_id, end, max_attempts, error, retry_at);
  if (rows.empty()) {
    tx.commit();
    return "";
  }
  const std::string state = rows[0][0].as<std::string>();
  if (state == "pending") {
    // The retry needs an event to carry it: the player's next sync, at the retry time.
    tx.exec_params("INSERT INTO entitlement_sync.key_uploads (user_id, kind, run_after) VALUES ($1, $2, $3)",
                   user_id, kind, rows[0][1].as<std::string>());
  }
  tx.commit();
  return state;
}

}  // namespace

std::string record_grant(pqxx::connection& c, const std::string& user_id, const request_result& r, int max_attempts) {
  return record_request(c, "grant_requests", "grant", user_id, r, max_attempts);
}

std::string record_consume(pqxx::connection& c, const std::string& user_id, const request_result& r,
                           int max_attempts) {
  return record_request(c, "consume_requests", "consume", user_id, r, max_attempts);
}

}  // namespace esd::db
