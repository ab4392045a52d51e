#include "sync/collections_read.hpp"

#include <iterator>
#include <numeric>

#include "store/collections.hpp"
#include "sync/page_loop.hpp"

namespace esd::sync {

namespace asio = boost::asio;

void keep_newest_per_item(std::vector<store::collection_item>& items) {
  if (items.size() < 2) return;
  std::vector<std::uint32_t> order(items.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&items](std::uint32_t a, std::uint32_t b) { return items[a].item_id < items[b].item_id; });
  std::vector<bool> drop(items.size(), false);
  bool any = false;
  for (std::size_t i = 1, best = order[0]; i < order.size(); ++i) {
    const std::size_t next = order[i];
    if (items[next].item_id != items[best].item_id) {
      best = next;
      continue;
    }
    any = true;
    if (items[next].modified_date >= items[best].modified_date) {  // of equal dates, the later one
      drop[best] = true;
      best = next;
    } else {
      drop[next] = true;
    }
  }
  if (!any) return;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (drop[i]) continue;
    if (kept != i) items[kept] = std::move(items[i]);
    ++kept;
  }
  items.resize(kept);
}

std::optional<store::store_time> modified_after_for(const db::sync_job& job, std::chrono::seconds overlap) {
  if (job.full_sync || !job.watermark || job.watermark->is_infinity()) return std::nullopt;
  return store::store_time{job.watermark->micros -
                           std::chrono::duration_cast<std::chrono::microseconds>(overlap).count()};
}

asio::awaitable<std::variant<db::sync_outcome, sync_failure>> read_collection(const db::sync_job& job,
                                                                             std::string_view collections_key,
                                                                             store_gateway& gateway,
                                                                             entra_token_cache& tokens) {
  const auto& cfg = gateway.cfg();
  store::collections_query_v6 query;
  query.collections_key = collections_key;
  query.modified_after = modified_after_for(job, cfg.sync.watermark_overlap);
  query.product_types = cfg.store.product_types;
  query.max_page_size = cfg.store.max_page_size;

  db::sync_outcome outcome;
  std::optional<store::store_time> hold;  // the earliest modifiedDate of an item refused alone
  const page_body body = [&query](const std::optional<std::string>& continuation) {
    query.continuation_token = continuation;
    return store::build_collections_query_v6(query);
  };
  const page_reader read = [&](const std::string& answer, int page) -> page_step {
    auto parsed = store::parse_collections_response(answer);
    if (!parsed)
      return transient("bad_answer", "the Store's collections answer made no sense (page " + std::to_string(page) +
                       "): " + parsed.error);
    outcome.pages = page;
    for (const auto& r : parsed.page->refused) {
      if (outcome.items_refused++ == 0) outcome.refused_reason = "page " + std::to_string(page) + ", " + r.reason;
      if (!r.modified_date.is_infinity() && (!hold || r.modified_date < *hold)) hold = r.modified_date;
    }
    auto& items = parsed.page->items;
    for (const auto& item : items) {
      if (!outcome.max_modified || item.modified_date > *outcome.max_modified)
        outcome.max_modified = item.modified_date;
    }
    // The first page's items are taken as parsed (sized exactly); later pages are appended.
    if (outcome.items.empty()) {
      outcome.items = std::move(items);
    } else {
      outcome.items.reserve(outcome.items.size() + items.size());
      std::move(items.begin(), items.end(), std::back_inserter(outcome.items));
    }
    return std::move(parsed.page->continuation_token);
  };
  const store_request request{api_endpoint::collections_query, cfg.store.collections_url + "/v6.0/collections/query",
                              {"the collections query", store::key_kind::collections}, {}};
  const page_limits limits{cfg.store.max_pages, cfg.store.max_collection_bytes, "the collection"};
  if (auto failure = co_await read_store_pages(job.user_id, request, body, limits, read, gateway, tokens,
                                               &outcome.throttled_waits))
    co_return std::move(*failure);

  keep_newest_per_item(outcome.items);  // an item repeated (across pages): the newest wins
  if (outcome.items_refused > 0) {
    // A refused item is never skipped silently: the watermark stays before it, so every sync reads it again
    // (and stores it once the Store sends it whole), and the player's last_error says which and why.
    if (hold && outcome.max_modified && !(*outcome.max_modified < *hold))
      outcome.max_modified = store::store_time{hold->micros - 1};
    outcome.refused_reason = std::to_string(outcome.items_refused) +
                             (outcome.items_refused == 1 ? " item was" : " items were") +
                             " not stored, the first: " + outcome.refused_reason +
                             "; the other items were written, and the next sync reads these again";
  }
  // A watermark in the future would hide items modified before it: never trust one beyond our clock.
  const store::store_time now{std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count()};
  if (outcome.max_modified && !outcome.max_modified->is_infinity() && outcome.max_modified->micros > now.micros)
    outcome.max_modified = now;
  co_return outcome;
}

}  // namespace esd::sync
