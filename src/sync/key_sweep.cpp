#include "sync/key_sweep.hpp"

#include <algorithm>

#include "db/db_error.hpp"
#include "db/queue.hpp"
#include "ops/log.hpp"
#include "sync/daemon_metrics.hpp"
#include "sync/key_renewal.hpp"

namespace esd::sync {

namespace asio = boost::asio;
using namespace std::chrono_literals;

void key_sweep::start() {
  chores_.spawn("keys: sweep", [this] { return run(); });
}

// Every duration is computed into a named local before co_await (GCC 12).
asio::awaitable<void> key_sweep::run() {
  const auto& k = keys_;
  if (k.keep_alive_for.count() == 0) co_return;
  const auto round = std::chrono::duration_cast<std::chrono::milliseconds>(k.sweep_interval);
  const auto spacing = round / std::max(k.sweep_batch, 1);
  const std::chrono::milliseconds first_wait = round < 2000ms ? round : 2000ms;  // claims go first
  co_await chores_.pause(first_wait);
  while (!chores_.stopped()) {
    const auto round_start = std::chrono::steady_clock::now();
    std::vector<db::key_due> due;
    try {
      auto find = [&k, codec = &codec_](pqxx::connection& c) {
        return db::keys_due_for_renewal(c, k.renew_after, k.renew_before_expiry, k.keep_alive_for, k.sweep_batch,
                                        codec);
      };
      due = co_await db_.run(find);
    } catch (const std::exception& e) {
      log::warning(std::string("keys: sweep query failed: ") + db::describe_error(e));
    }
    for (const auto& d : due) {
      if (chores_.stopped()) co_return;
      if (d.key.empty()) {
        log::warning("keys: sweep cannot read the stored key " + log::field("user", d.user_id) +
                     " (encrypted with a key not in [security] key_encryption_key_file)");
        continue;
      }
      const std::chrono::milliseconds no_wait{0};
      if (auto over = co_await gateway_.admit(d.user_id, no_wait)) continue;  // the player is busy: next round
      auto r = co_await renew_store_id_key(d.key, d.kind, gateway_, tokens_, d.user_id);
      const std::string who = log::field("user", d.user_id) + " " + log::field("key", store::to_string(d.kind));
      static constexpr const char* names[] = {"renewed", "refused_host", "dead", "failed"};
      metrics_.inc(metric::key_renewals, {{"trigger", "sweep"}, {"outcome", names[static_cast<int>(r.outcome)]}});
      try {
        if (r.outcome == renewal_result::status::renewed) {
          auto store_key = [&d, &r, fresh = codec_.to_stored(r.key, d.user_id, d.kind)](pqxx::connection& c) {
            return db::store_renewed_key(c, d.user_id, d.kind, d.fingerprint, fresh, r.issued_at, r.expires_at);
          };
          co_await db_.run(store_key);
          log::info("keys: sweep renewed " + who);
        } else if (r.outcome == renewal_result::status::dead) {
          auto mark = [&d, &r](pqxx::connection& c) {
            db::mark_key_dead(c, d.user_id, d.kind, d.fingerprint, r.reason);
            return true;
          };
          co_await db_.run(mark);
          log::warning("keys: sweep " + who + " " + log::field("reason", r.reason));
        } else {
          log::warning("keys: sweep could not renew " + who + " " + log::field("reason", r.reason));
        }
      } catch (const std::exception& e) {
        log::warning("keys: sweep could not store the renewal of " + who + ": " + db::describe_error(e));
      }
      std::chrono::milliseconds next = spacing;
      if (r.retry_after) {
        const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(*r.retry_after);
        if (after > next) next = after;
      }
      co_await chores_.pause(next);
    }
    const auto spent =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - round_start);
    if (spent < round) {
      const std::chrono::milliseconds rest = round - spent;
      co_await chores_.pause(rest);
    }
  }
}

}  // namespace esd::sync
