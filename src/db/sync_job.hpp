// What one player's sync works on and what it brings back: the job a queue claim hands out (events,
// lease, stored keys, due grant and consume requests) and the outcome committed in one transaction.
// Plain values: the pipeline reads and fills them without any database in reach.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/collections.hpp"
#include "store/purchase.hpp"
#include "store/store_date.hpp"
#include "store/store_id_key.hpp"

namespace esd::db {

// A free-product grant to carry out within the player's sync (grant_requests).
struct grant_task {
  std::int64_t request_id = 0;
  std::string product_id, sku_id, availability_id, language, market;
  std::string order_id;  // the idempotency key, the same on every try
  std::optional<std::string> dev_offer_id;
  int quantity = 1;
  int attempts = 0;  // tries before this one
};

// A consumable fulfilment report to carry out within the player's sync (consume_requests).
struct consume_task {
  std::int64_t request_id = 0;
  std::string item_id;     // the item to report; empty when product_id matched no consumable the player has
  std::string product_id;  // as asked, when the request named a product
  std::string tracking_id;  // the idempotency key, the same on every try
  int attempts = 0;
};

// The player's key of one kind as user_keys holds it; every field is empty when none is stored.
struct stored_key {
  std::optional<std::string> key;  // plain, ready to send
  // stored_key_fingerprint of the column as claimed (maybe sealed): for compare-and-set.
  std::optional<std::string> fingerprint;
  std::optional<store::store_time> issued_at, expires_at;
  std::optional<std::string> dead;  // why and since when the Store refused it
};

struct sync_job {
  std::string user_id;
  std::vector<std::int64_t> event_ids;  // all events folded into this job, oldest first
  std::int64_t lease_id = 0;            // fences every later write: a job whose lease was lost writes nothing
  bool full_sync = false;
  int attempts = 0;                     // including this one
  std::vector<std::string> key_problems;  // uploaded keys that could not be taken, in plain words
  stored_key collections, purchase;
  std::optional<store::store_time> watermark;
  std::vector<grant_task> grants;      // due grant requests, oldest first
  std::vector<consume_task> consumes;  // due consume requests, oldest first

  const stored_key& key_of(store::key_kind kind) const {
    return kind == store::key_kind::collections ? collections : purchase;
  }
};

struct sync_outcome {
  std::vector<store::collection_item> items;  // de-duplicated by item id
  std::optional<store::store_time> max_modified;
  int pages = 0;
  int throttled_waits = 0;  // 429s waited out inside the sync
  // Items refused alone (store::refused_item): recorded as the player's last_error, the rest written; the
  // watermark (max_modified) was held before the earliest of them, so the next sync reads them again.
  int items_refused = 0;
  std::string refused_reason;
  // Subscriptions: a complete read (every page), or why the read failed; neither when not read.
  std::optional<std::vector<store::recurrence>> subscriptions;
  std::optional<std::string> subscriptions_error;
  std::optional<std::chrono::system_clock::time_point> subscriptions_retry_at;  // transient failures
};

}  // namespace esd::db
