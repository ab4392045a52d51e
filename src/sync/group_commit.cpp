#include "sync/group_commit.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <vector>

#include "ops/log_failure.hpp"

namespace esd::sync {

namespace asio = boost::asio;

struct group_commit::pending {
  const db::sync_job* job;
  const db::sync_outcome* outcome;
  asio::steady_timer* done;
  bool mine = false;
  std::exception_ptr error;
};

asio::awaitable<bool> group_commit::complete(const db::sync_job& job, const db::sync_outcome& outcome) {
  asio::steady_timer done(io_, std::chrono::steady_clock::time_point::max());
  pending p{&job, &outcome, &done, false, nullptr};
  waiting_.push_back(&p);
  if (!writing_) {
    writing_ = true;
    asio::co_spawn(io_, write_pending(), ops::log_failure("sync: group commit stopped"));
  }
  co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
  if (p.error) std::rethrow_exception(p.error);
  co_return p.mine;
}

asio::awaitable<void> group_commit::write_pending() {
  while (!waiting_.empty()) {
    std::vector<pending*> batch;
    while (!waiting_.empty() && batch.size() < 128) {
      batch.push_back(waiting_.front());
      waiting_.pop_front();
    }
    std::vector<const db::sync_job*> jobs;
    std::vector<const db::sync_outcome*> outcomes;
    for (auto* p : batch) {
      jobs.push_back(p->job);
      outcomes.push_back(p->outcome);
    }
    bool batch_failed = false;
    try {
      // Jobs capture nothing of the daemon: after a shutdown timeout they may run once it is gone.
      auto write = [jobs, outcomes, owner = owner_, max = cfg_.sync.max_attempts](pqxx::connection& c) {
        return db::complete_jobs(c, jobs, outcomes, owner, max);
      };
      auto mine = co_await db_.run(write);
      for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->mine = mine[i];
    } catch (const std::exception& e) {
      batch_failed = batch.size() > 1;
      if (!batch_failed) batch.front()->error = std::current_exception();
    }
    // One sync whose rows the database refuses must not hold back the others: write each alone.
    if (batch_failed) {
      for (auto* p : batch) {
        try {
          auto write_one = [job = p->job, outcome = p->outcome, owner = owner_,
                            max = cfg_.sync.max_attempts](pqxx::connection& c) {
            return db::complete_job(c, *job, owner, *outcome, max);
          };
          p->mine = co_await db_.run(write_one);
        } catch (const std::exception&) {
          p->error = std::current_exception();
        }
      }
    }
    for (auto* p : batch) p->done->cancel();
  }
  writing_ = false;
}

}  // namespace esd::sync
