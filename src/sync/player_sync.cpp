#include "sync/player_sync.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

#include "ops/log.hpp"
#include "ops/log_failure.hpp"
#include "sync/key_renewal.hpp"
#include "sync/purchase_calls.hpp"

namespace esd::sync {

namespace asio = boost::asio;

namespace {

std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string utc(store::store_time t) { return store::format_utc(t); }

// Renews a key that is getting old. A renewal that fails leaves the current key in use while it lasts.
// `key` views the job's key, or the renewed key in report.renewed once renewed.
asio::awaitable<void> renew_if_due(const db::sync_job& job, store::key_kind kind, std::string_view& key,
                                   const std::optional<store::store_time>& issued,
                                   const std::optional<store::store_time>& expires, store_gateway& gateway,
                                   entra_token_cache& tokens, player_sync_result& report) {
  const auto& k = gateway.cfg().keys;
  if (!renewal_due(issued, expires, k.renew_after, k.renew_before_expiry, store::store_time{now_micros()}))
    co_return;
  const std::chrono::milliseconds max_wait = gateway.cfg().sync.max_inline_wait;
  if (auto over = co_await gateway.admit(job.user_id, max_wait)) {
    log::info("keys: renewal postponed, the player's Store request budget is used up " +
              log::field("user", job.user_id));
    co_return;
  }
  auto r = co_await renew_store_id_key(key, kind, gateway, tokens, job.user_id);
  const std::string who = log::field("user", job.user_id) + " " + log::field("key", store::to_string(kind));
  switch (r.outcome) {
    case renewal_result::status::renewed:
      log::info("keys: renewed " + who + " " + log::field("expires", utc(r.expires_at)));
      report.renewed.push_back(renewed_key{kind, std::move(r.key), r.issued_at, r.expires_at});
      key = report.renewed.back().new_key;
      break;
    case renewal_result::status::dead:
      report.dead.push_back(dead_key{kind, r.reason});
      log::warning("keys: " + who + " " + log::field("reason", r.reason));
      break;
    case renewal_result::status::refused_host:
    case renewal_result::status::failed:
      log::warning("keys: not renewed " + who + " " + log::field("reason", r.reason));
      break;
  }
}

}  // namespace

namespace {

// The stored key of one kind cannot be sent: why, in words, and as a failure; nullopt when it can.
std::optional<sync_failure> unusable_key(const db::sync_job& job, store::key_kind kind) {
  const bool collections = kind == store::key_kind::collections;
  const auto& key = job.key_of(kind).key;
  const auto& dead = job.key_of(kind).dead;
  const auto& expires = job.key_of(kind).expires_at;
  const std::string name = collections ? "collections key" : "purchase key";
  if (!key)
    return permanent("no_key", "no " + name + " is stored for this player: the game backend must insert the player's " +
                     (collections ? "UserCollectionsId into entitlement_sync.key_uploads (collections_key)"
                                  : "UserPurchaseId into entitlement_sync.key_uploads (purchase_key)"));
  if (dead)
    return permanent("dead_key", "the " + name + " was refused by the Store at " + *dead +
                     "; the game client must request a new key from the Store and upload it");
  if (expires && expires->micros <= now_micros())
    return permanent("expired_key", "the " + name + " expired at " + utc(*expires) +
                     "; the game client must request a new key from the Store and upload it");
  return std::nullopt;
}

// A key the Store refused during this sync: from now on it is not used, and the daemon marks it dead.
std::optional<sync_failure> refused_in_this_sync(const player_sync_result& report, store::key_kind kind) {
  for (const auto& d : report.dead) {
    if (d.kind != kind) continue;
    auto f = permanent("dead_key", d.reason);
    f.dead_key = kind;
    return f;
  }
  return std::nullopt;
}

// The stored key of one kind, ready to send: checked, then renewed when due. Returns why it cannot be
// used, if it cannot (also when the Store refused it while renewing). `key` views the job's key or the
// renewed one in `report` (each held once, however many requests use it).
asio::awaitable<std::optional<sync_failure>> ready_key(const db::sync_job& job, store::key_kind kind,
                                                       std::string_view& key, store_gateway& gateway,
                                                       entra_token_cache& tokens, player_sync_result& report) {
  if (auto problem = unusable_key(job, kind)) co_return problem;
  const auto& stored = job.key_of(kind);
  key = *stored.key;
  co_await renew_if_due(job, kind, key, stored.issued_at, stored.expires_at, gateway, tokens, report);
  co_return refused_in_this_sync(report, kind);
}

// A request not sent because its key cannot be used: the key's reason, without marking the key again.
sync_failure not_attempted(const std::string& what, const sync_failure& key_problem) {
  sync_failure f = key_problem;
  f.reason = what + key_problem.reason;
  f.dead_key.reset();
  return f;
}

// The job's due grant requests, each recorded as soon as the Store has answered it. A purchase key the
// Store refuses becomes purchase_problem for the rest of the sync. Its own coroutine: a sync without
// grants (most) carries none of this in its frame while it waits for the Store.
asio::awaitable<void> carry_out_grants(const db::sync_job& job, std::string_view purchase_key,
                                       std::optional<sync_failure>& purchase_problem, store_gateway& gateway,
                                       entra_token_cache& tokens, const request_recorder& record,
                                       player_sync_result& report) {
  for (const auto& g : job.grants) {
    request_report r{request_kind::grant, g.request_id, g.attempts, std::nullopt, {}, {}};
    if (purchase_problem) {
      r.failure = not_attempted("not granted: ", *purchase_problem);
    } else {
      auto answer = co_await grant_product(job.user_id, g, purchase_key, gateway, tokens);
      if (auto* ok = std::get_if<store::grant_answer>(&answer)) {
        r.order_state = ok->order_state;
        r.line_item_id = ok->line_item_id;
      } else {
        r.failure = std::get<sync_failure>(std::move(answer));
        if (r.failure->dead_key) {
          report.dead.push_back(dead_key{store::key_kind::purchase, r.failure->reason});
          purchase_problem = r.failure;
          r.failure->dead_key.reset();
        }
      }
    }
    co_await record(r);
  }
}

// The job's due consume reports, likewise; a collections key the Store refuses becomes stored_problem
// (and collections_problem, if there was none).
asio::awaitable<void> report_consumes(const db::sync_job& job, std::string_view collections_key,
                                      std::optional<sync_failure>& stored_problem,
                                      std::optional<sync_failure>& collections_problem, store_gateway& gateway,
                                      entra_token_cache& tokens, const request_recorder& record,
                                      player_sync_result& report) {
  for (const auto& t : job.consumes) {
    request_report r{request_kind::consume, t.request_id, t.attempts, std::nullopt, {}, {}};
    if (stored_problem) {
      r.failure = not_attempted("not reported: ", *stored_problem);
    } else if (t.item_id.empty()) {
      r.failure = permanent("store_rejected", "not reported: the player owns no active item of product " +
                            t.product_id + " with a quantity left (entitlements as of the last sync)");
    } else {
      r.failure = co_await consume_item(job.user_id, t, collections_key, gateway, tokens);
      if (r.failure && r.failure->dead_key) {
        report.dead.push_back(dead_key{store::key_kind::collections, r.failure->reason});
        stored_problem = r.failure;
        if (!collections_problem) collections_problem = stored_problem;
        r.failure->dead_key.reset();
      }
    }
    co_await record(r);
  }
}

using subscriptions_answer = std::variant<std::vector<store::recurrence>, sync_failure>;

// The subscriptions read, running beside the collections query as a coroutine of its own; its answer is
// awaited once the collection is in. (Awaitable operators would spawn both calls and keep a third frame
// for the pair, for every sync in flight.)
struct subscriptions_leg {
  explicit subscriptions_leg(const asio::any_io_executor& ex) : done(ex, asio::steady_timer::time_point::max()) {}
  std::optional<subscriptions_answer> answer;
  asio::steady_timer done;  // cancelled when the answer is in
};

}  // namespace

asio::awaitable<player_sync_result> sync_player(const db::sync_job& job, store_gateway& gateway,
                                                entra_token_cache& tokens, const request_recorder& record) {
  player_sync_result report;
  report.renewed.reserve(2);  // at most one renewal per kind: the keys' views into it stay valid
  const auto& cfg = gateway.cfg();

  // The purchase key: renewed when due, then used for grants and subscriptions.
  std::string_view purchase_key;
  std::optional<sync_failure> purchase_problem =
      co_await ready_key(job, store::key_kind::purchase, purchase_key, gateway, tokens, report);

  // Grants first, so that the collections query below already sees what they granted.
  if (!job.grants.empty())
    co_await carry_out_grants(job, purchase_key, purchase_problem, gateway, tokens, record, report);

  // The collections key: checked, renewed when due, then used for consume reports and the query.
  std::optional<sync_failure> collections_problem;
  if (!job.key_problems.empty()) {
    // The newest problem, and how many more: a flood of bad uploads must not make a reason per upload.
    std::string reason = job.key_problems.back();
    if (job.key_problems.size() > 1)
      reason += " (and " + std::to_string(job.key_problems.size() - 1) + " earlier upload" +
                (job.key_problems.size() > 2 ? "s" : "") + " of this player could not be used either)";
    collections_problem = permanent("bad_key", std::move(reason));
  }
  std::string_view collections_key;
  std::optional<sync_failure> stored_problem =
      co_await ready_key(job, store::key_kind::collections, collections_key, gateway, tokens, report);
  if (!collections_problem) collections_problem = stored_problem;

  if (!job.consumes.empty())
    co_await report_consumes(job, collections_key, stored_problem, collections_problem, gateway, tokens, record,
                             report);

  if (collections_problem) {
    // Its own dead-key mark was made above, through report.dead.
    collections_problem->dead_key.reset();
    report.result = *collections_problem;
    co_return report;
  }
  // Subscriptions, when there is a purchase key to read them with, are read while the collection is
  // queried: one Store round trip of waiting instead of two. They are kept only if the collections query
  // worked.
  if (!cfg.store.subscriptions || purchase_problem) {
    report.result = co_await read_collection(job, collections_key, gateway, tokens);
    co_return report;
  }
  const auto ex = co_await asio::this_coro::executor;
  auto leg = std::make_shared<subscriptions_leg>(ex);
  asio::co_spawn(ex, read_subscriptions(job.user_id, purchase_key, gateway, tokens),
                 [leg](std::exception_ptr e, subscriptions_answer answer) {
                   if (e) {
                     ops::log_exception("subscriptions: the read stopped", e);
                     leg->answer = transient("internal", "subscriptions: the read stopped unexpectedly");
                   } else {
                     leg->answer = std::move(answer);
                   }
                   leg->done.cancel();
                 });
  // The read uses the keys this frame views (a renewed key lives in `report`): it is waited for whatever
  // happens to the collections query.
  std::exception_ptr collections_error;
  try {
    report.result = co_await read_collection(job, collections_key, gateway, tokens);
  } catch (...) {
    collections_error = std::current_exception();
  }
  if (!leg->answer) co_await leg->done.async_wait(asio::as_tuple(asio::use_awaitable));
  if (collections_error) std::rethrow_exception(collections_error);
  auto& subs = *leg->answer;
  if (auto* failure = std::get_if<sync_failure>(&subs); failure && failure->dead_key) {
    report.dead.push_back(dead_key{store::key_kind::purchase, failure->reason});
    failure->dead_key.reset();
  }
  if (auto* outcome = std::get_if<db::sync_outcome>(&report.result)) {
    if (auto* list = std::get_if<std::vector<store::recurrence>>(&subs)) {
      outcome->subscriptions = std::move(*list);
    } else {
      report.subscriptions_failure = std::get<sync_failure>(std::move(subs));
    }
  }
  co_return report;
}


}  // namespace esd::sync
