// The parts of the configuration that touch the file system: the config file itself, the secret file,
// the CA file, and the URL checks that `check-config` runs before the daemon would find out the hard way.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "config/config.hpp"

namespace esd::config {
namespace {

// Enough for any secret or PEM bundle; a bigger file is the wrong file, so we stop rather than read it all.
constexpr std::size_t max_file_bytes = 1 << 20;

struct file_read {
  std::string bytes;
  std::string error;  // "no such file", "permission denied", ...
};

file_read read_small_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return {{}, "is a directory, not a file"};
  errno = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return {{}, std::generic_category().message(errno)};
  std::string bytes;
  char buf[8192];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f.get())) {
    bytes.append(buf, n);
    if (bytes.size() > max_file_bytes) return {{}, "is larger than 1 MiB; is it the right file?"};
  }
  if (std::ferror(f.get())) return {{}, "could not be read"};
  return {std::move(bytes), {}};
}

std::string prefix(const std::string& source) { return source.empty() ? "" : source + ": "; }

// "entra.client_secret_file" -> "[entra] client_secret_file"
std::string display_key(const std::string& key) {
  auto dot = key.find('.');
  if (dot == std::string::npos) return key;
  return "[" + key.substr(0, dot) + "] " + key.substr(dot + 1);
}

void check_https_url(const std::string& url, const std::string& key, const std::string& source) {
  auto fail = [&](const std::string& why) {
    throw config_error(key, 0, prefix(source) + display_key(key) + " = " + url + ": " + why);
  };
  std::string_view rest = url;
  // The Store and Entra carry bearer tokens and Store ID keys: plain http would expose them, so there
  // is no exception for localhost either (the emulator serves https with its own CA in ca_file).
  if (!rest.starts_with("https://")) fail("must be an https:// URL");
  rest.remove_prefix(8);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) fail("must not contain a user name or password");
  std::string_view host = authority;
  if (host.starts_with('[')) {
    auto close = host.find(']');
    if (close == std::string_view::npos) fail("has an unterminated [IPv6] host");
    std::string_view after = host.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) fail("has text after the [IPv6] host");
    host = host.substr(0, close + 1);
    authority = after;
  } else {
    auto colon = host.find(':');
    authority = colon == std::string_view::npos ? std::string_view{} : host.substr(colon);
    host = host.substr(0, colon);
  }
  if (host.empty() || host == "[]") fail("has no host");
  for (char c : host)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      fail("has whitespace or control characters in the host");
  if (!authority.empty()) {  // ":port"
    std::string_view port = authority.substr(1);
    int n = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || (n = n * 10 + (c - '0')) > 65535) fail("has an invalid port");
    }
    if (port.empty() || n == 0) fail("has an invalid port");
  }
}

void check_ca_file(const std::string& path, const std::string& source) {
  const std::string key = "store.ca_file";
  file_read r = read_small_file(path);
  if (!r.error.empty())
    throw config_error(key, 0, prefix(source) + "[store] ca_file " + path + ": " + r.error);
  if (r.bytes.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
    throw config_error(key, 0,
                       prefix(source) + "[store] ca_file " + path +
                           ": contains no PEM certificate (-----BEGIN CERTIFICATE-----)");
}

}  // namespace

config load_config(const std::string& path) {
  file_read r = read_small_file(path);
  if (!r.error.empty())
    throw config_error(
        "", 0,
        "cannot read the config file " + path + ": " + r.error + " (use --config FILE to read another one)");
  return parse_config(r.bytes, path);
}

std::string read_secret_file(const std::string& path, const std::string& key) {
  file_read r = read_small_file(path);
  if (!r.error.empty()) throw config_error(key, 0, display_key(key) + " " + path + ": " + r.error);
  // `echo secret > file` adds one newline; any other whitespace may be part of the secret.
  if (r.bytes.ends_with('\n')) r.bytes.pop_back();
  if (r.bytes.ends_with('\r')) r.bytes.pop_back();
  if (r.bytes.empty()) throw config_error(key, 0, display_key(key) + " " + path + ": the file is empty");
  return std::move(r.bytes);
}

void validate_files_and_urls(const config& c) {
  const std::string& src = c.source_path;
  try {
    read_secret_file(c.entra.client_secret_file, "entra.client_secret_file");
  } catch (const config_error& e) {
    throw config_error(
        e.key(), 0,
        prefix(src) + e.what() +
            " (put the Entra app's client secret in that file, or point client_secret_file elsewhere)");
  }
  if (!c.store.ca_file.empty()) check_ca_file(c.store.ca_file, src);
  check_https_url(c.store.collections_url, "store.collections_url", src);
  check_https_url(c.store.purchase_url, "store.purchase_url", src);
  check_https_url(c.effective_token_url(), "entra.token_url", src);
}

}  // namespace esd::config
