// parse_https_url: the only URL syntax the daemon sends requests to. Strict on purpose: the URLs come
// from the config file and from the Store's answers, and a malformed one should be reported, not guessed.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <string_view>

#include "net/https_client.hpp"

namespace esd::net {
namespace {

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  return std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Registered names as RFC 3986 allows them in practice: letters, digits, '-', '.', '_'.
// Percent-encoded hosts are not accepted.
bool valid_reg_name(std::string_view host) {
  if (host.empty()) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

bool valid_ipv6(std::string_view literal) {
  std::string s(literal);
  unsigned char buf[16];
  return inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// The target goes verbatim into the request line: no spaces or control characters.
bool valid_target(std::string_view t) {
  return std::all_of(t.begin(), t.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f;
  });
}

}  // namespace

std::optional<https_url> parse_https_url(std::string_view url) {
  constexpr std::string_view scheme = "https://";
  if (!iequals_prefix(url, scheme)) return std::nullopt;
  if (url.find('#') != std::string_view::npos) return std::nullopt;  // fragments are never sent
  std::string_view rest = url.substr(scheme.size());

  auto authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no userinfo

  https_url out;
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    if (!valid_ipv6(host)) return std::nullopt;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (!valid_reg_name(host)) return std::nullopt;
  }
  if (host.empty()) return std::nullopt;
  if (has_port) {
    auto port = parse_port(port_text);
    if (!port) return std::nullopt;
    out.port = *port;
  }
  if (!valid_target(target)) return std::nullopt;

  out.host = lower(host);
  if (target.empty()) {
    out.target = "/";
  } else if (target.front() == '?') {
    out.target = "/" + std::string(target);
  } else {
    out.target = std::string(target);
  }
  return out;
}

}  // namespace esd::net
