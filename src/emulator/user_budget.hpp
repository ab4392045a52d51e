// Fine-grained rate limiting as the Store does it: each player ({userId;publisherId}) may make N operations
// in any sliding window of W seconds (200 / 300 s by default); past that, 429 with Retry-After.
#pragma once

#include <chrono>
#include <deque>
#include <string>
#include <unordered_map>

namespace esd::emulator {

class user_budget {
 public:
  using clock = std::chrono::steady_clock;

  user_budget(int operations, int window_seconds)
      : operations_(operations), window_seconds_(window_seconds) {}

  void configure(int operations, int window_seconds);
  int operations() const { return operations_; }
  int window_seconds() const { return window_seconds_; }

  // 0 when the operation is admitted (and counted); otherwise the seconds until a slot frees, at least 1.
  int admit(const std::string& user_id, clock::time_point now = clock::now());

 private:
  int operations_, window_seconds_;
  std::unordered_map<std::string, std::deque<clock::time_point>> used_;
};

// "200/300" -> {200, 300}; false when malformed or not positive.
bool parse_budget(std::string_view text, int& operations, int& window_seconds);

}  // namespace esd::emulator
