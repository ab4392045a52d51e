// Grant and consume requests: how each try ended, recorded on its row.
#include "db/queue.hpp"

#include "store/error_text.hpp"

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
  const std::string error = store::bounded_error(r.error);
  pqxx::result rows = grant ? tx.exec_params(sql, r.request_id, end, max_attempts, error, retry_at,
                                             store::bounded_error(r.order_state), store::bounded_error(r.line_item_id))
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
