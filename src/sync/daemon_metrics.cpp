#include "sync/daemon_metrics.hpp"

namespace esd::sync::metric {

void describe_all(ops::metrics& m) {
  m.describe_counter(events, "Syncs finished, by outcome: done, failed (for good), retry, lost_lease.");
  m.describe_counter(events_failed, "Syncs that failed, by reason (bad_key, dead_key, expired_key, no_key, "
                                    "throttled, store_error, store_rejected, unreachable, bad_answer, entra, "
                                    "service_token, refusal_burst).");
  m.describe_counter(items_written, "Entitlement items written.");
  m.describe_histogram(sync_duration, "Duration of one player's sync, Store calls included.",
                       {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
  m.describe_gauge(syncs_in_flight, "Player syncs running now.");
  m.describe_counter(store_requests, "Requests to the Store and Entra, by endpoint and HTTP status (error: no answer).");
  m.describe_counter(store_throttled, "HTTP 429 answers from the Store.");
  m.describe_counter(store_paced,
                     "Store requests held back by our own limits, by limit (player budget, global rate).");
  m.describe_counter(leases_lost, "Syncs whose events were taken up again elsewhere after their lease ran out.");
  m.describe_counter(events_pruned, "Finished and failed events deleted after their retention period.");
  m.describe_counter(backfill_queued, "Players queued by backfills.");
  m.describe_counter(purchase_requests, "Grant and consume requests carried out, by kind and outcome.");
  m.describe_counter(subscription_reads, "Subscription reads at sync, by outcome.");
  m.describe_counter(token_fetches, "Entra token requests, by outcome.");
  m.describe_counter(key_renewals, "Store ID key renewals, by trigger (sync, sweep) and outcome.");
  m.describe_counter(service_token_refused,
                     "Service tokens the Store refused (401); each is replaced by a newly fetched one before any "
                     "key is judged.");
  m.describe_counter(key_refusals_held,
                     "Key refusals not taken as dead keys because the Store was refusing the keys of many players "
                     "at once, by key kind.");
  m.describe_gauge(queue_waiting, "Events waiting in key_uploads.");
  m.describe_gauge(queue_running, "Events being synced.");
  m.describe_gauge(queue_failed, "Events retained in state failed.");
  m.describe_gauge(queue_oldest, "Age of the oldest due waiting event, in seconds.");
  m.describe_gauge(keys_expiring, "Live Store ID keys that expire within 7 days.");
  m.describe_gauge(db_busy, "Database connections in use (queued and running jobs).");
}

}  // namespace esd::sync::metric
