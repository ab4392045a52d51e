// Keeps stored keys alive between logins: each round renews at most [keys] sweep_batch keys of players seen
// within keep_alive_for, spaced evenly over the round, so renewals never come as a burst.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "config/config.hpp"
#include "db/db_pool.hpp"
#include "db/key_codec.hpp"
#include "ops/metrics.hpp"
#include "sync/entra_token_cache.hpp"
#include "sync/housekeeping.hpp"
#include "sync/store_gateway.hpp"

namespace esd::sync {

class key_sweep {
 public:
  key_sweep(const config::keys_config& keys, db::db_pool& db, const db::key_codec& codec, store_gateway& gateway,
            entra_token_cache& tokens, ops::metrics& metrics, housekeeping& chores)
      : keys_(keys), db_(db), codec_(codec), gateway_(gateway), tokens_(tokens), metrics_(metrics), chores_(chores) {}

  // Runs the sweep until the chores stop (nothing when keep_alive_for is 0).
  void start();

 private:
  boost::asio::awaitable<void> run();

  const config::keys_config& keys_;
  db::db_pool& db_;
  const db::key_codec& codec_;
  store_gateway& gateway_;
  entra_token_cache& tokens_;
  ops::metrics& metrics_;
  housekeeping& chores_;
};

}  // namespace esd::sync
