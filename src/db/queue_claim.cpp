// The queue claim: see claim_jobs in queue.hpp.
#include <algorithm>
#include <map>
#include <span>

#include "db/pg_array.hpp"
#include "db/pg_timestamp.hpp"
#include "db/queue.hpp"
#include "ops/log.hpp"
#include "store/key_sealing.hpp"
#include "store/uploaded_key_check.hpp"

namespace esd::db {

namespace {

// pg_advisory_xact_lock key that serializes claims across daemons: "esd_claim".
constexpr long long claim_lock_key = 0x6573645f636c6169LL;

// A statement refused because of what a row holds (a value out of range, a constraint, a row too big for
// an index), rather than because of the connection or the server.
bool refused_by_data(const pqxx::sql_error& e) {
  const std::string_view state = e.sqlstate();
  return state.starts_with("22") || state.starts_with("23") || state.starts_with("54");
}

// The claim; with keys_one_by_one, each player's keys are stored in a savepoint of their own, and a player
// whose keys the database refuses keeps its old ones and gets the reason as a key problem.
std::vector<sync_job> claim(pqxx::connection& c, const claim_options& o, bool keys_one_by_one) {
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
  std::map<std::string, sync_job> jobs;
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
    job.watermark = from_pg_timestamptz(row["watermark"]);
    // Each key held once: plain, and a fingerprint of the stored form for compare-and-set.
    auto open = [&](store::key_kind kind, const std::string& name, stored_key& k) {
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
      k.issued_at = from_pg_timestamptz(row[name + "_issued_at"]);
      k.expires_at = from_pg_timestamptz(row[name + "_expires_at"]);
      if (!row[name + "_dead"].is_null()) k.dead = row[name + "_dead"].as<std::string>();
    };
    open(store::key_kind::collections, "collections_key", job.collections);
    open(store::key_kind::purchase, "purchase_key", job.purchase);
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
    grant_task g;
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
    consume_task t;
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

  std::vector<sync_job> out;
  out.reserve(jobs.size());
  for (auto& [user, job] : jobs) out.push_back(std::move(job));
  return out;
}

}  // namespace

std::vector<sync_job> claim_jobs(pqxx::connection& c, const claim_options& o) {
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

}  // namespace esd::db
