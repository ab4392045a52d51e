// Group commit: syncs that finish while a write is under way are written together by the next one, in
// one transaction with set-based statements, so a storm costs a few transactions instead of one per
// player, and a lone sync waits for nobody.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <deque>
#include <string>

#include "config/config.hpp"
#include "db/db_pool.hpp"
#include "db/queue.hpp"

namespace esd::sync {

class group_commit {
 public:
  // cfg is the running configuration ([sync] max_attempts may change on SIGHUP).
  group_commit(boost::asio::io_context& io, db::db_pool& db, const config::config& cfg, const std::string& owner)
      : io_(io), db_(db), cfg_(cfg), owner_(owner) {}

  // Writes a successful sync's outcome and finishes its events; false when they are no longer ours (the
  // lease ran out and another daemon took them). Throws what the database refused.
  boost::asio::awaitable<bool> complete(const db::sync_job& job, const db::sync_outcome& outcome);

 private:
  struct pending;
  boost::asio::awaitable<void> write_pending();

  boost::asio::io_context& io_;
  db::db_pool& db_;
  const config::config& cfg_;
  const std::string& owner_;
  std::deque<pending*> waiting_;  // syncs waiting for the next group commit
  bool writing_ = false;
};

}  // namespace esd::sync
