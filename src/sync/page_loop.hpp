// A paged Store read (a player's collection, their subscriptions, later queries): asks for the first page,
// then follows continuation tokens to the end, within [store] max_pages and max_collection_bytes and
// without going round in a circle (page_bookkeeping.hpp). A caller says only how to build a page's
// request body and what to make of a page's answer.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "sync/retry_policy.hpp"
#include "sync/store_request.hpp"

namespace esd::sync {

struct page_limits {
  int max_pages = 1;
  std::uint64_t max_bytes = 0;
  std::string what;  // names the read in reasons: "the collection", "subscriptions"
};

// What one page's answer said: the continuation token to follow (none: that was the last page), or why
// the read ends here.
using page_step = std::variant<std::optional<std::string>, sync_failure>;

// Reads one page's answer (its number counts from 1); it keeps what it needs from it.
using page_reader = std::function<page_step(const std::string& body, int page)>;

// Fetches one page's answer given the continuation token (none: the first page).
using page_fetcher =
    std::function<boost::asio::awaitable<std::variant<std::string, sync_failure>>(const std::optional<std::string>&)>;

// The loop itself: nullopt once the last page was read, else why the read ended.
boost::asio::awaitable<std::optional<sync_failure>> follow_pages(const page_limits& limits, const page_fetcher& fetch,
                                                                 const page_reader& read);

// Builds a page's request body from its continuation token (none: the first page).
using page_body = std::function<std::string(const std::optional<std::string>& continuation)>;

// A paged Store read for `user`: every page is a send_store_request of `request` with the body `body`
// builds for that page (request.body is not used).
boost::asio::awaitable<std::optional<sync_failure>> read_store_pages(
    const std::string& user, const store_request& request, const page_body& body, const page_limits& limits,
    const page_reader& read, store_gateway& gateway, entra_token_cache& tokens, int* throttled_waits = nullptr);

}  // namespace esd::sync
