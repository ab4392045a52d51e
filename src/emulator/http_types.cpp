#include "emulator/http_types.hpp"

#include <openssl/rand.h>

#include <boost/json/serialize.hpp>
#include <cstdio>
#include <ctime>

#include <cctype>
#include <chrono>

namespace esd::emulator {

http_response json_response(http::status status, const boost::json::value& body, unsigned version) {
  http_response res{status, version};
  res.set(http::field::content_type, "application/json; charset=utf-8");
  res.set(http::field::date, http_date_now());
  res.body() = boost::json::serialize(body);
  res.prepare_payload();
  return res;
}

http_response text_response(http::status status, std::string body, unsigned version) {
  http_response res{status, version};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::date, http_date_now());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

http_response json_text_response(http::status status, std::string body, unsigned version) {
  http_response res{status, version};
  res.set(http::field::content_type, "application/json; charset=utf-8");
  res.set(http::field::date, http_date_now());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

http_response no_content_response(unsigned version) {
  http_response res{http::status::no_content, version};
  res.set(http::field::date, http_date_now());
  res.set(http::field::content_length, "0");
  return res;
}

std::string_view target_path(const http_request& req) {
  const std::string_view target = req.target();
  return target.substr(0, target.find('?'));
}

std::string_view bearer_token(const http_request& req) {
  const auto it = req.find(http::field::authorization);
  if (it == req.end()) return {};
  std::string_view v = it->value();
  if (v.size() < 7) return {};
  for (std::size_t i = 0; i < 6; ++i)
    if ((v[i] | 0x20) != "bearer"[i]) return {};
  if (v[6] != ' ') return {};
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return v;
}

std::string http_date_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string random_guid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    for (auto& c : b) c = static_cast<unsigned char>(std::rand());
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace esd::emulator
