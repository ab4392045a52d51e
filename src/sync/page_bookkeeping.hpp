// The bookkeeping of one paged Store read (a player's collection, or their subscriptions): the bytes of the
// answers held so far, against [store] max_collection_bytes, and the continuation tokens already followed.
// A Store that keeps sending pages, sends huge ones, or leads back to a page it gave before (A -> B -> A)
// ends the read with a reason, instead of holding memory without bound or spending the player's request
// budget in a loop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "sync/retry_policy.hpp"

namespace esd::sync {

class page_bookkeeping {
 public:
  // `what` names the read in reasons: "the collection", "subscriptions".
  page_bookkeeping(std::uint64_t max_bytes, std::string what) : max_bytes_(max_bytes), what_(std::move(what)) {}

  // A page's answer has arrived: its bytes count until the read ends. A failure once the read's answers
  // come to more than max_bytes (a configuration matter: the reason says which key to raise).
  std::optional<sync_failure> count_answer(std::size_t bytes);

  // The continuation token of the page just counted: a failure when an earlier page of this read gave the
  // same one (the Store would lead the read in a circle). Only a hash of each token is kept.
  std::optional<sync_failure> follow(std::string_view token);

 private:
  std::uint64_t max_bytes_;
  std::string what_;
  std::uint64_t bytes_ = 0;
  int pages_ = 0;
  std::unordered_set<std::uint64_t> seen_;  // hashes of the tokens followed so far
};

}  // namespace esd::sync
