#include "sync/page_loop.hpp"

#include "sync/page_bookkeeping.hpp"

namespace esd::sync {

namespace asio = boost::asio;

asio::awaitable<std::optional<sync_failure>> follow_pages(const page_limits& limits, const page_fetcher& fetch,
                                                          const page_reader& read) {
  page_bookkeeping book(limits.max_bytes, limits.what);
  std::optional<std::string> continuation;
  for (int page = 1;; ++page) {
    if (page > limits.max_pages)
      co_return permanent("too_many_pages", limits.what + ": more than " + std::to_string(limits.max_pages) +
                          " pages ([store] max_pages); raise it if this player really owns that much");
    auto answer = co_await fetch(continuation);
    if (auto* failure = std::get_if<sync_failure>(&answer)) co_return std::move(*failure);
    const auto& body = std::get<std::string>(answer);
    if (auto over = book.count_answer(body.size())) co_return over;
    auto step = read(body, page);
    if (auto* failure = std::get_if<sync_failure>(&step)) co_return std::move(*failure);
    auto& next = std::get<std::optional<std::string>>(step);
    if (!next) co_return std::nullopt;
    if (auto cycle = book.follow(*next)) co_return cycle;
    continuation = std::move(next);
  }
}

asio::awaitable<std::optional<sync_failure>> read_store_pages(
    const std::string& user, const store_request& request, const page_body& body, const page_limits& limits,
    const page_reader& read, store_gateway& gateway, entra_token_cache& tokens, int* throttled_waits) {
  const page_fetcher fetch =
      [&](const std::optional<std::string>& continuation) -> asio::awaitable<std::variant<std::string, sync_failure>> {
    store_request page = request;
    page.body = [&body, &continuation](const std::string&) { return body(continuation); };
    auto answer = co_await send_store_request(user, page, gateway, tokens, throttled_waits);
    if (auto* failure = std::get_if<sync_failure>(&answer)) co_return std::move(*failure);
    co_return std::move(std::get<net::http_response>(answer).body);
  };
  co_return co_await follow_pages(limits, fetch, read);
}

}  // namespace esd::sync
