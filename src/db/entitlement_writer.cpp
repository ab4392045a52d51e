// complete_job: the one transaction that makes a sync visible. Entitlements, the player's watermark and
// the events' completion commit together, so a crash can never leave the watermark ahead of the data.
#include <algorithm>
#include <unordered_map>
#include <string>

#include "db/entitlement_columns.hpp"
#include "db/pg_array.hpp"
#include "db/pg_timestamp.hpp"
#include "db/queue.hpp"
#include "store/error_text.hpp"

namespace esd::db {

namespace {

constexpr std::size_t rows_per_statement = 1000;

constexpr const char* items_incremental = "esd_write_items";
constexpr const char* items_full = "esd_write_items_full";
constexpr const char* events_ours = "esd_events_ours";
constexpr const char* events_done = "esd_events_done";
constexpr const char* user_synced = "esd_user_synced";
constexpr const char* subscriptions_gone = "esd_subscriptions_gone";
constexpr const char* subscriptions_read = "esd_subscriptions_read";

// Prepared statements live on their connection; a reopened connection is a new pqxx::connection with none.
void ensure_prepared(pqxx::connection& c) {
  thread_local pqxx::connection* prepared_on = nullptr;
  thread_local int prepared_pid = 0;
  if (prepared_on == &c && prepared_pid == c.backendpid()) return;
  c.prepare(items_incremental, entitlement_upsert_sql(false));
  c.prepare(items_full, entitlement_upsert_sql(true));
  c.prepare(events_ours,
            "SELECT event_id, lease_id FROM entitlement_sync.key_uploads "
            "WHERE event_id = ANY($1::bigint[]) AND state = 'running' AND claimed_by = $2 "
            "ORDER BY event_id FOR UPDATE");
  c.prepare(events_done,
            "UPDATE entitlement_sync.key_uploads SET state = 'done', finished_at = now(), lease_until = NULL, "
            "  last_error = NULL WHERE event_id = ANY($1::bigint[])");
  c.prepare(user_synced,
            "UPDATE entitlement_sync.users u SET "
            "  watermark = CASE WHEN t.wm IS NULL THEN u.watermark "
            "                   ELSE greatest(coalesce(u.watermark, t.wm), t.wm) END, "
            "  last_synced_at = now(), last_error = t.refused, "
            "  last_error_at = CASE WHEN t.refused IS NULL THEN NULL ELSE now() END, "
            "  items = (SELECT count(*) FROM entitlement_sync.entitlements e WHERE e.user_id = u.user_id) "
            "FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS t(user_id, wm, refused) "
            "WHERE u.user_id = t.user_id");
  c.prepare(subscriptions_gone,
            "UPDATE entitlement_sync.subscriptions s SET gone_at = now() "
            "WHERE s.user_id = ANY($1::text[]) AND s.gone_at IS NULL AND NOT EXISTS ("
            "  SELECT 1 FROM unnest($2::text[], $3::text[]) AS t(user_id, recurrence_id) "
            "  WHERE t.user_id = s.user_id AND t.recurrence_id = s.recurrence_id)");
  c.prepare(subscriptions_read,
            "UPDATE entitlement_sync.users SET subscriptions_synced_at = now(), subscriptions_error = NULL, "
            "  subscriptions_failures = 0 WHERE user_id = ANY($1::text[])");
  prepared_on = &c;
  prepared_pid = c.backendpid();
}

// Writes the items of several players in as few statements as possible (one per rows_per_statement rows),
// all either incremental or full. The rows go to the server as one array parameter per column of a
// statement prepared once per connection (INSERT ... SELECT FROM unnest(...)), instead of a VALUES list
// of literals whose text, and so its parse, differs with every call.
void write_items(pqxx::work& tx, const std::vector<std::pair<const sync_job*, const sync_outcome*>>& jobs,
                 bool full) {
  entitlement_rows rows;
  auto flush = [&] {
    if (rows.size() == 0) return;
    const auto params = rows.take();
    tx.exec_prepared(full ? items_full : items_incremental, pqxx::prepare::make_dynamic_params(params));
  };
  for (const auto& [job, outcome] : jobs) {
    for (const auto& it : outcome->items) {
      rows.add(job->user_id, it);
      if (rows.size() == rows_per_statement) flush();
    }
  }
  flush();
}

// Every subscription of a complete read is upserted (complete_jobs marks those no longer in the answer
// gone; they come back if they reappear). A failed read leaves the rows as they were and says why.
void write_subscriptions(pqxx::work& tx, const sync_job& job, const sync_outcome& o, int max_attempts) {
  auto t = [](const std::optional<store::store_time>& v) -> std::optional<std::string> {
    if (!v) return std::nullopt;
    return to_pg_timestamptz(*v);
  };
  auto b = [](const std::optional<bool>& v) -> std::optional<std::string> {
    if (!v) return std::nullopt;
    return std::string(*v ? "true" : "false");
  };
  auto nz = [](const std::string& v) -> std::optional<std::string> {
    if (v.empty()) return std::nullopt;
    return v;
  };
  if (o.subscriptions) {
    for (const auto& s : *o.subscriptions) {
      tx.exec_params(
          "INSERT INTO entitlement_sync.subscriptions AS s (user_id, recurrence_id, product_id, sku_id, state, "
          "  auto_renew, is_trial, market, start_time, expiration_time, expiration_time_with_grace, "
          "  cancellation_date, last_modified, beneficiary) "
          "VALUES ($1, $2, $3, $4, $5, $6::boolean, $7::boolean, $8, $9::timestamptz, $10::timestamptz, "
          "  $11::timestamptz, $12::timestamptz, $13::timestamptz, $14) "
          "ON CONFLICT (user_id, recurrence_id) DO UPDATE SET product_id = EXCLUDED.product_id, "
          "  sku_id = EXCLUDED.sku_id, state = EXCLUDED.state, auto_renew = EXCLUDED.auto_renew, "
          "  is_trial = EXCLUDED.is_trial, market = EXCLUDED.market, start_time = EXCLUDED.start_time, "
          "  expiration_time = EXCLUDED.expiration_time, "
          "  expiration_time_with_grace = EXCLUDED.expiration_time_with_grace, "
          "  cancellation_date = EXCLUDED.cancellation_date, last_modified = EXCLUDED.last_modified, "
          "  beneficiary = EXCLUDED.beneficiary, synced_at = now(), gone_at = NULL",
          job.user_id, s.id, nz(s.product_id), nz(s.sku_id), nz(s.state), b(s.auto_renew), b(s.is_trial),
          nz(s.market), t(s.start_time), t(s.expiration_time), t(s.expiration_time_with_grace),
          t(s.cancellation_date), t(s.last_modified), nz(s.beneficiary));
    }
  } else if (o.subscriptions_error) {
    auto failures = tx.exec_params1(
        "UPDATE entitlement_sync.users SET subscriptions_error = $2, "
        "  subscriptions_failures = subscriptions_failures + 1 WHERE user_id = $1 RETURNING subscriptions_failures",
        job.user_id, store::bounded_error(*o.subscriptions_error))[0].as<int>();
    // A transient failure is tried again on its own, a bounded number of times in a row: a player whose
    // subscriptions always fail (the Store has such cases) is not retried forever.
    if (o.subscriptions_retry_at && failures < max_attempts) {
      const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                              o.subscriptions_retry_at->time_since_epoch()).count();
      tx.exec_params(
          "INSERT INTO entitlement_sync.key_uploads (user_id, kind, run_after) "
          "VALUES ($1, 'subscriptions', to_timestamp($2::float8 / 1e6))",
          job.user_id, std::to_string(micros));
    }
  }
}

}  // namespace

std::vector<bool> complete_jobs(pqxx::connection& c, const std::vector<const sync_job*>& jobs,
                                const std::vector<const sync_outcome*>& outcomes, const std::string& owner,
                                int max_attempts) {
  ensure_prepared(c);
  pqxx::work tx(c);
  // Take the events first: a job whose events are not all still ours under its lease writes nothing.
  std::vector<std::int64_t> all_ids;
  for (const auto* job : jobs) all_ids.insert(all_ids.end(), job->event_ids.begin(), job->event_ids.end());
  std::unordered_map<std::int64_t, std::int64_t> lease_of;
  for (const auto& row : tx.exec_prepared(events_ours, to_pg_bigint_array(all_ids), owner))
    lease_of.emplace(row[0].as<std::int64_t>(), row[1].is_null() ? 0 : row[1].as<std::int64_t>());
  std::vector<bool> mine(jobs.size(), false);
  // In user order, so that two daemons' batches lock players' rows in the same order.
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    mine[i] = std::all_of(jobs[i]->event_ids.begin(), jobs[i]->event_ids.end(), [&](std::int64_t id) {
      auto it = lease_of.find(id);
      return it != lease_of.end() && it->second == jobs[i]->lease_id;
    });
    if (mine[i]) order.push_back(i);
  }
  if (order.empty()) {
    tx.abort();
    return mine;
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return jobs[a]->user_id < jobs[b]->user_id; });

  std::vector<std::int64_t> done_ids;
  std::vector<std::pair<const sync_job*, const sync_outcome*>> incremental, full;
  pg_array user_col, wm_col, refused_col;
  std::vector<std::string> read_users, read_user_of_row, read_ids;
  for (auto i : order) {
    const auto* job = jobs[i];
    const auto* o = outcomes[i];
    done_ids.insert(done_ids.end(), job->event_ids.begin(), job->event_ids.end());
    (job->full_sync ? full : incremental).emplace_back(job, o);
    user_col.text(job->user_id);
    wm_col.time(o->max_modified);
    // Items refused alone are the player's last_error even though the sync is done (see sync_outcome).
    refused_col.text_or_null(o->items_refused > 0 ? store::bounded_error(o->refused_reason) : std::string());
    if (o->subscriptions) {
      read_users.push_back(job->user_id);
      for (const auto& sub : *o->subscriptions) {
        read_user_of_row.push_back(job->user_id);
        read_ids.push_back(sub.id);
      }
    }
  }
  tx.exec_prepared(events_done, to_pg_bigint_array(done_ids));
  if (!incremental.empty()) write_items(tx, incremental, false);
  if (!full.empty()) write_items(tx, full, true);
  tx.exec_prepared(user_synced, user_col.take(), wm_col.take(), refused_col.take());
  for (auto i : order) write_subscriptions(tx, *jobs[i], *outcomes[i], max_attempts);
  if (!read_users.empty()) {
    tx.exec_prepared(subscriptions_gone, to_pg_text_array(read_users), to_pg_text_array(read_user_of_row),
                     to_pg_text_array(read_ids));
    tx.exec_prepared(subscriptions_read, to_pg_text_array(read_users));
  }
  tx.commit();
  return mine;
}

bool complete_job(pqxx::connection& c, const sync_job& job, const std::string& owner, const sync_outcome& o,
                  int max_attempts) {
  return complete_jobs(c, {&job}, {&o}, owner, max_attempts).front();
}

}  // namespace esd::db
