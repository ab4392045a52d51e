// The daemon's metric families (Prometheus names and help), declared in one place.
#pragma once

#include "ops/metrics.hpp"

namespace esd::sync::metric {

inline constexpr const char* events = "entitlement_syncd_events_total";
inline constexpr const char* events_failed = "entitlement_syncd_events_failed_total";
inline constexpr const char* items_written = "entitlement_syncd_items_written_total";
inline constexpr const char* sync_duration = "entitlement_syncd_sync_duration_seconds";
inline constexpr const char* syncs_in_flight = "entitlement_syncd_syncs_in_flight";
inline constexpr const char* store_requests = "entitlement_syncd_store_requests_total";
inline constexpr const char* store_throttled = "entitlement_syncd_store_throttled_total";
inline constexpr const char* store_paced = "entitlement_syncd_store_paced_total";
inline constexpr const char* leases_lost = "entitlement_syncd_leases_lost_total";
inline constexpr const char* events_pruned = "entitlement_syncd_events_pruned_total";
inline constexpr const char* backfill_queued = "entitlement_syncd_backfill_queued_total";
inline constexpr const char* purchase_requests = "entitlement_syncd_purchase_requests_total";
inline constexpr const char* subscription_reads = "entitlement_syncd_subscription_reads_total";
inline constexpr const char* token_fetches = "entitlement_syncd_token_fetches_total";
inline constexpr const char* key_renewals = "entitlement_syncd_key_renewals_total";
inline constexpr const char* service_token_refused = "entitlement_syncd_service_token_refused_total";
inline constexpr const char* key_refusals_held = "entitlement_syncd_key_refusals_held_total";
inline constexpr const char* queue_waiting = "entitlement_syncd_queue_waiting";
inline constexpr const char* queue_running = "entitlement_syncd_queue_running";
inline constexpr const char* queue_failed = "entitlement_syncd_queue_failed";
inline constexpr const char* queue_oldest = "entitlement_syncd_queue_oldest_waiting_seconds";
inline constexpr const char* keys_expiring = "entitlement_syncd_keys_expiring_7d";
inline constexpr const char* db_busy = "entitlement_syncd_db_connections_busy";

void describe_all(ops::metrics& m);

}  // namespace esd::sync::metric
