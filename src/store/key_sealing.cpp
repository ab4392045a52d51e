#include "store/key_sealing.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "store/store_id_key.hpp"

namespace esd::store {
namespace {

constexpr std::string_view sealed_prefix = "esd1:";
constexpr std::size_t nonce_size = 12;
constexpr std::size_t tag_size = 16;
constexpr std::size_t max_id_length = 32;
constexpr std::size_t max_key_file_size =
    64 * 1024;  // a keyring is a few lines; anything bigger is a mistake

constexpr std::string_view not_sealed = "not a sealed value";
constexpr std::string_view authentication_failed = "authentication failed (wrong key, tampered or moved)";

struct cipher_ctx_free {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free>;

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > max_id_length) return false;
  for (char c : id)
    if (!is_id_char(c)) return false;
  return true;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

int standard_base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// The number of bytes `text` decodes to, if it is canonical standard base64 with padding (RFC 4648
// section 4): whole quanta, at most two '=' and only at the end, unused bits zero.
std::optional<std::size_t> standard_base64_length(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  std::string_view data = text.substr(0, text.size() - pad);
  for (char c : data)
    if (standard_base64_value(c) < 0) return std::nullopt;
  if (pad > 0) {
    int last = standard_base64_value(data.back());
    if ((last & (pad == 1 ? 0x3 : 0xf)) != 0) return std::nullopt;
  }
  return text.size() / 4 * 3 - pad;
}

// Decodes text already accepted by standard_base64_length into out, which has room for all of it.
void standard_base64_decode(std::string_view text, unsigned char* out) {
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<std::uint32_t>(standard_base64_value(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out++ = static_cast<unsigned char>((acc >> bits) & 0xff);
    }
  }
  OPENSSL_cleanse(&acc, sizeof acc);  // it held key bits
}

[[noreturn]] void line_error(std::size_t line, const std::string& what) {
  throw std::runtime_error("line " + std::to_string(line) + ": " + what);
}

// Wipes a buffer that held key material (the key file's text) however the scope is left.
struct wipe_on_exit {
  std::string& buffer;
  ~wipe_on_exit() { OPENSSL_cleanse(buffer.data(), buffer.size()); }
};

// Feeds associated data in one or more pieces; GCM treats consecutive pieces as one string.
bool add_aad(EVP_CIPHER_CTX* ctx, bool encrypting, std::string_view aad) {
  if (aad.empty()) return true;
  if (aad.size() > static_cast<std::size_t>(INT_MAX)) return false;
  int len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(aad.data());
  int n = static_cast<int>(aad.size());
  return (encrypting ? EVP_EncryptUpdate(ctx, nullptr, &len, in, n)
                     : EVP_DecryptUpdate(ctx, nullptr, &len, in, n)) == 1;
}

std::string aad_header(std::string_view id) {
  std::string h(sealed_prefix);
  h += id;
  h += ':';
  return h;
}

}  // namespace

keyring::entry::~entry() { OPENSSL_cleanse(key.data(), key.size()); }

keyring keyring::parse(std::string_view text) {
  keyring ring;
  std::size_t line_no = 0;
  std::vector<std::size_t> id_lines;  // where each entry was defined, for duplicate messages
  while (!text.empty()) {
    ++line_no;
    std::size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;

    // Nothing from the line is quoted in a message unless it is a valid key id: a line written the wrong
    // way round, or a key pasted alone, would otherwise put key material in the log.
    std::size_t gap = line.find_first_of(" \t");
    if (gap == std::string_view::npos)
      line_error(line_no, "expected \"KEYID BASE64KEY\", found a single field");
    std::string_view id = line.substr(0, gap);
    std::string_view encoded = trim(line.substr(gap));
    if (encoded.find_first_of(" \t") != std::string_view::npos)
      line_error(line_no, "expected \"KEYID BASE64KEY\", found more than two fields");
    if (id.size() > max_id_length)
      line_error(line_no, "the key id is " + std::to_string(id.size()) +
                              " characters long; use 1 to 32 characters of A-Z a-z 0-9 _ . -");
    if (!is_valid_id(id)) line_error(line_no, "the key id has a character other than A-Z a-z 0-9 _ . -");
    for (std::size_t i = 0; i < ring.entries_.size(); ++i) {
      if (ring.entries_[i].id == id)
        line_error(line_no, "key id \"" + std::string(id) + "\" is already used on line " +
                                std::to_string(id_lines[i]) + "; every key needs its own id");
    }
    auto length = standard_base64_length(encoded);
    if (!length)
      line_error(
          line_no,
          "the key is not valid standard base64 with padding; generate one with `openssl rand -base64 32`");
    if (*length != 32)
      line_error(line_no,
                 "the key decodes to " + std::to_string(*length) +
                     " bytes, but AES-256 needs exactly 32; generate one with `openssl rand -base64 32`");
    entry& e = ring.entries_.emplace_back();
    e.id = std::string(id);
    standard_base64_decode(encoded, e.key.data());
    id_lines.push_back(line_no);
  }
  if (ring.entries_.empty())
    throw std::runtime_error(
        "no key found: every line is blank or a comment; add a line \"KEYID BASE64KEY\" with a key from "
        "`openssl rand -base64 32`");
  return ring;
}

keyring keyring::load_file(const std::string& path) {
  auto fail = [&](const std::string& why) -> keyring {
    throw std::runtime_error("key_encryption_key_file " + path + ": " + why);
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::string("cannot open: ") + std::strerror(errno));
  struct fd_closer {
    int fd;
    ~fd_closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail("not a regular file");
  if (static_cast<std::uintmax_t>(st.st_size) > max_key_file_size)
    return fail("larger than 64 KiB; it should hold a few \"KEYID BASE64KEY\" lines");

  std::string text;
  wipe_on_exit wipe{text};
  text.resize(max_key_file_size + 1);  // sized once, so no reallocation leaves key bytes behind
  std::size_t used = 0;
  while (used < text.size()) {
    ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  if (used > max_key_file_size)
    return fail("larger than 64 KiB; it should hold a few \"KEYID BASE64KEY\" lines");
  try {
    return parse(std::string_view(text.data(), used));
  } catch (const std::runtime_error& e) {
    return fail(e.what());
  }
}

const std::string& keyring::current_id() const { return entries_.front().id; }

bool keyring::has(std::string_view id) const { return find(id) != nullptr; }

std::size_t keyring::size() const { return entries_.size(); }

const keyring::entry* keyring::find(std::string_view id) const {
  for (const entry& e : entries_)
    if (e.id == id) return &e;
  return nullptr;
}

bool is_sealed(std::string_view value) { return value.starts_with(sealed_prefix); }

std::string seal(const keyring& ring, std::string_view plaintext, std::string_view associated_data) {
  if (plaintext.size() > static_cast<std::size_t>(INT_MAX) - nonce_size - tag_size ||
      associated_data.size() > static_cast<std::size_t>(INT_MAX))
    throw std::length_error("seal: value or associated data too large");
  const keyring::entry& key = ring.entries_.front();
  auto fail = [](const char* step) -> std::string {
    throw std::runtime_error(std::string("AES-256-GCM sealing failed at ") + step);
  };

  std::string raw(nonce_size + plaintext.size() + tag_size, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(raw.data());
  auto* out = nonce + nonce_size;
  auto* tag = out + plaintext.size();
  if (RAND_bytes(nonce, static_cast<int>(nonce_size)) != 1) return fail("RAND_bytes");

  cipher_ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return fail("EVP_CIPHER_CTX_new");
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce_size), nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.key.data(), nonce) != 1)
    return fail("init");
  if (!add_aad(ctx.get(), true, aad_header(key.id)) || !add_aad(ctx.get(), true, associated_data))
    return fail("associated data");
  int len = 0;
  // With no plaintext there is no update: an update with a null output buffer would be read as AAD.
  if (!plaintext.empty() &&
      (EVP_EncryptUpdate(ctx.get(), out, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                         static_cast<int>(plaintext.size())) != 1 ||
       static_cast<std::size_t>(len) != plaintext.size()))
    return fail("encrypt");
  int final_len = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), out + len, &final_len) != 1 || final_len != 0) return fail("final");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_size), tag) != 1)
    return fail("tag");

  return std::string(sealed_prefix) + key.id + ":" + base64url_encode(raw);
}

open_result open_sealed(const keyring& ring, std::string_view sealed,
                        std::string_view associated_data) noexcept {
  auto fail = [](std::string_view why) { return open_result{std::nullopt, std::string(why)}; };
  try {
    if (!is_sealed(sealed)) return fail(not_sealed);
    std::string_view rest = sealed.substr(sealed_prefix.size());
    std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos) return fail(not_sealed);
    std::string_view id = rest.substr(0, colon);
    if (!is_valid_id(id)) return fail(not_sealed);
    const keyring::entry* key = ring.find(id);
    if (!key) return fail("sealed with unknown key id " + std::string(id));

    std::string_view encoded = rest.substr(colon + 1);
    if (encoded.find('=') != std::string_view::npos) return fail(not_sealed);  // we never write padding
    auto raw = base64url_decode(encoded);
    if (!raw || raw->size() < nonce_size + tag_size || raw->size() > static_cast<std::size_t>(INT_MAX))
      return fail(not_sealed);
    std::size_t text_size = raw->size() - nonce_size - tag_size;
    auto* nonce = reinterpret_cast<unsigned char*>(raw->data());
    auto* in = nonce + nonce_size;
    auto* tag = in + text_size;

    cipher_ctx ctx(EVP_CIPHER_CTX_new());
    if (!ctx) return fail("cannot open the sealed value: OpenSSL is out of memory");
    if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce_size), nullptr) != 1 ||
        EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key->key.data(), nonce) != 1 ||
        !add_aad(ctx.get(), false, aad_header(key->id)) || !add_aad(ctx.get(), false, associated_data))
      return fail(authentication_failed);

    std::string plaintext(text_size, '\0');
    // Until the tag is checked the buffer holds unauthenticated plaintext: wipe it on every failure.
    auto wipe_and_fail = [&] {
      OPENSSL_cleanse(plaintext.data(), plaintext.size());
      return fail(authentication_failed);
    };
    int len = 0;
    if (text_size > 0 && (EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()),
                                            &len, in, static_cast<int>(text_size)) != 1 ||
                          static_cast<std::size_t>(len) != text_size))
      return wipe_and_fail();
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag_size), tag) != 1)
      return wipe_and_fail();
    int final_len = 0;
    // The tag comparison happens here, in constant time.
    if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()) + len,
                            &final_len) != 1 ||
        final_len != 0)
      return wipe_and_fail();
    return {std::move(plaintext), {}};
  } catch (...) {  // std::bad_alloc: callers were promised an open_result, not an exception
    open_result r;
    r.error = "out of memory";  // short enough not to allocate
    return r;
  }
}

}  // namespace esd::store
