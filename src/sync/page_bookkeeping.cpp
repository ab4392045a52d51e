#include "sync/page_bookkeeping.hpp"

#include <functional>

namespace esd::sync {

namespace {

std::string megabytes(std::uint64_t bytes) {
  const std::uint64_t mb = 1024 * 1024;
  return bytes % mb == 0 ? std::to_string(bytes / mb) + " MB" : std::to_string(bytes) + " bytes";
}

}  // namespace

std::optional<sync_failure> page_bookkeeping::count_answer(std::size_t bytes) {
  ++pages_;
  bytes_ += bytes;
  if (bytes_ <= max_bytes_) return std::nullopt;
  // Not the player's fault and not the Store's: the limit is ours. Retrying would fetch the same again.
  return permanent("too_large", what_ + ": the Store's answers came to more than " + megabytes(max_bytes_) +
                   " after " + std::to_string(pages_) + (pages_ == 1 ? " page" : " pages") +
                   " ([store] max_collection_bytes); if this player really owns that much, raise "
                   "[store] max_collection_bytes (each sync in flight may hold that much) and request a resync");
}

std::optional<sync_failure> page_bookkeeping::follow(std::string_view token) {
  // 64-bit hashes: an accidental match among the few thousand tokens of one read is vanishingly unlikely,
  // and at worst ends one read early with a transient failure.
  const std::uint64_t h = std::hash<std::string_view>{}(token);
  if (!seen_.insert(h).second)
    return transient("bad_answer", what_ + ": the Store led back to a page it had already given (a continuation "
                     "token repeated after " + std::to_string(pages_) + " pages); retrying later");
  return std::nullopt;
}

}  // namespace esd::sync
