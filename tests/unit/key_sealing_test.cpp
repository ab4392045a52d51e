#define BOOST_TEST_MODULE key_sealing
#include <boost/test/unit_test.hpp>
// BOOST_TEST_MODULE above makes this include define main().
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include "db/key_codec.hpp"
#include "store/key_sealing.hpp"
#include "store/store_id_key.hpp"

using namespace esd::store;

namespace {

// 32 bytes derived from a seed, as standard base64 with padding (what `openssl rand -base64 32` prints).
std::string key_bytes(char seed) {
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes += static_cast<char>(seed * 31 + i * 7);
  return bytes;
}
std::string standard_base64(std::string_view bytes) {
  std::string s = base64url_encode(bytes);
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4 != 0) s += '=';
  return s;
}
std::string key_b64(char seed) { return standard_base64(key_bytes(seed)); }

keyring ring_of(std::initializer_list<std::pair<std::string, char>> keys) {
  std::string text;
  for (auto& [id, seed] : keys) text += id + " " + key_b64(seed) + "\n";
  return keyring::parse(text);
}

std::string jwt_like(std::size_t size) {
  std::string s = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.";
  for (std::size_t i = 0; s.size() < size; ++i)
    s += "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_"[i * 7 % 48];
  s[size - 300] = '.';
  s.resize(size);
  return s;
}

constexpr std::string_view aad = "user_keys.collections_key:player-42";
constexpr std::string_view auth_failed = "authentication failed (wrong key, tampered or moved)";

std::string payload_of(const std::string& sealed) { return sealed.substr(sealed.rfind(':') + 1); }
std::string prefix_of(const std::string& sealed) { return sealed.substr(0, sealed.rfind(':') + 1); }

// The message of the runtime_error that parse throws for `text`.
std::string parse_error(const std::string& text) {
  try {
    keyring::parse(text);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  BOOST_FAIL("parse accepted: " << text);
  return {};
}

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trips_empty_short_and_jwt_sized_values) {
  auto ring = ring_of({{"k1", 'a'}});
  for (const std::string& plain : {std::string(), std::string("x"), jwt_like(2048)}) {
    std::string sealed = seal(ring, plain, aad);
    BOOST_TEST(sealed.starts_with("esd1:k1:"));
    BOOST_TEST(is_sealed(sealed));
    auto opened = open_sealed(ring, sealed, aad);
    BOOST_TEST_REQUIRE(static_cast<bool>(opened), opened.error);
    BOOST_TEST(*opened.plaintext == plain);
    BOOST_TEST(opened.error.empty());
    // 12-byte nonce + ciphertext + 16-byte tag, base64url without padding.
    std::size_t raw = 12 + plain.size() + 16;
    BOOST_TEST(payload_of(sealed).size() == raw / 3 * 4 + (raw % 3 ? raw % 3 + 1 : 0));
    BOOST_TEST(!contains(payload_of(sealed), "="));
  }
}

BOOST_AUTO_TEST_CASE(sealed_form_is_nonce_ciphertext_tag_with_key_id_bound_in_the_associated_data) {
  // Decrypt with OpenSSL directly, so the documented format (and not only our own reader) is what is tested.
  auto ring = ring_of({{"k1", 'a'}});
  std::string plain = jwt_like(500);
  std::string sealed = seal(ring, plain, aad);
  auto raw = base64url_decode(payload_of(sealed));
  BOOST_TEST_REQUIRE(raw.has_value());
  BOOST_TEST_REQUIRE(raw->size() == 12 + plain.size() + 16);
  auto* bytes = reinterpret_cast<unsigned char*>(raw->data());
  std::string key = key_bytes('a');
  std::string full_aad = "esd1:k1:" + std::string(aad);
  std::string out(plain.size(), '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0, final_len = 0;
  BOOST_TEST(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                                reinterpret_cast<const unsigned char*>(key.data()), bytes) == 1);
  BOOST_TEST(EVP_DecryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(full_aad.data()),
                               static_cast<int>(full_aad.size())) == 1);
  BOOST_TEST(EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, bytes + 12,
                               static_cast<int>(plain.size())) == 1);
  BOOST_TEST(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, bytes + 12 + plain.size()) == 1);
  BOOST_TEST(EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &final_len) == 1);
  EVP_CIPHER_CTX_free(ctx);
  BOOST_TEST(out == plain);
}

BOOST_AUTO_TEST_CASE(each_seal_uses_a_fresh_nonce) {
  auto ring = ring_of({{"k1", 'a'}});
  std::set<std::string> seen, nonces;
  for (int i = 0; i < 50; ++i) {
    std::string sealed = seal(ring, "same plaintext", aad);
    seen.insert(sealed);
    nonces.insert(base64url_decode(payload_of(sealed))->substr(0, 12));
  }
  BOOST_TEST(seen.size() == 50u);
  BOOST_TEST(nonces.size() == 50u);
}

BOOST_AUTO_TEST_CASE(a_value_moved_to_another_row_or_column_does_not_open) {
  auto ring = ring_of({{"k1", 'a'}});
  std::string sealed = seal(ring, jwt_like(1000), aad);
  for (std::string_view other : {"user_keys.collections_key:player-43", "user_keys.purchase_key:player-42",
                                 "", "user_keys.collections_key:player-42 "}) {
    auto opened = open_sealed(ring, sealed, other);
    BOOST_TEST(!opened);
    BOOST_TEST(opened.error == auth_failed);
  }
  // Sealed with no associated data opens only with none.
  std::string bare = seal(ring, "v", "");
  BOOST_TEST(static_cast<bool>(open_sealed(ring, bare, "")));
  BOOST_TEST(!open_sealed(ring, bare, "x"));
}

BOOST_AUTO_TEST_CASE(tampering_with_any_byte_of_the_payload_fails) {
  auto ring = ring_of({{"k1", 'a'}});
  std::string sealed = seal(ring, "a Store ID key", aad);
  std::string raw = *base64url_decode(payload_of(sealed));
  for (std::size_t i = 0; i < raw.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80}) {
      std::string bad = raw;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      auto opened = open_sealed(ring, prefix_of(sealed) + base64url_encode(bad), aad);
      BOOST_TEST(!opened, "byte " << i);
      BOOST_TEST(opened.error == auth_failed);
      BOOST_TEST(!opened.plaintext.has_value());
    }
  }
  // Every character of the text form, too (some become non-canonical base64url: also refused).
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    BOOST_TEST(!open_sealed(ring, bad, aad), "char " << i);
  }
}

BOOST_AUTO_TEST_CASE(truncated_or_malformed_values_fail) {
  auto ring = ring_of({{"k1", 'a'}});
  std::string sealed = seal(ring, "a Store ID key", aad);
  for (std::size_t n = 0; n < sealed.size(); ++n) {
    auto opened = open_sealed(ring, sealed.substr(0, n), aad);
    BOOST_TEST(!opened, "length " << n);
    BOOST_TEST(!opened.error.empty());
  }
  BOOST_TEST(open_sealed(ring, sealed + "A", aad).error == "not a sealed value");
  BOOST_TEST(open_sealed(ring, "esd1:k1:" + payload_of(sealed).substr(0, 20), aad).error ==
             "not a sealed value");
  for (std::string_view bad : {"", "eyJhbGciOi.x.y", "esd1:", "esd1:k1", "esd1::AAAA", "esd1:k 1:AAAA",
                               "esd2:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}) {
    auto opened = open_sealed(ring, bad, aad);
    BOOST_TEST(!opened);
    BOOST_TEST(opened.error == "not a sealed value", bad);
  }
  BOOST_TEST(open_sealed(ring, sealed + "==", aad).error == "not a sealed value");
  BOOST_TEST(!is_sealed("eyJhbGciOi.x.y"));
  BOOST_TEST(!is_sealed("esd1"));
}

BOOST_AUTO_TEST_CASE(unknown_key_id_is_named) {
  auto a = ring_of({{"2024-01.a", 'a'}});
  auto b = ring_of({{"other", 'b'}});
  auto opened = open_sealed(b, seal(a, "secret", aad), aad);
  BOOST_TEST(!opened);
  BOOST_TEST(opened.error == "sealed with unknown key id 2024-01.a");
}

BOOST_AUTO_TEST_CASE(the_key_id_is_authenticated_not_just_a_label) {
  // Two ids for the same key bytes: relabelling a sealed value must not open it.
  auto ring = ring_of({{"one", 'a'}, {"two", 'a'}});
  std::string sealed = seal(ring, "secret", aad);
  BOOST_TEST(sealed.starts_with("esd1:one:"));
  std::string relabelled = "esd1:two:" + payload_of(sealed);
  BOOST_TEST(open_sealed(ring, relabelled, aad).error == auth_failed);
  // A same-named key with other bytes: the wrong key.
  auto impostor = ring_of({{"one", 'z'}});
  BOOST_TEST(open_sealed(impostor, sealed, aad).error == auth_failed);
}

BOOST_AUTO_TEST_CASE(rotation_opens_old_values_and_seals_new_ones_with_the_new_key) {
  auto a = ring_of({{"A", 'a'}});
  auto ba = ring_of({{"B", 'b'}, {"A", 'a'}});
  BOOST_TEST(ba.current_id() == "B");
  BOOST_TEST(ba.size() == 2u);
  BOOST_TEST(ba.has("A"));
  BOOST_TEST(ba.has("B"));
  BOOST_TEST(!ba.has("C"));

  std::string old_value = seal(a, "old key", aad);
  auto opened = open_sealed(ba, old_value, aad);
  BOOST_TEST_REQUIRE(static_cast<bool>(opened), opened.error);
  BOOST_TEST(*opened.plaintext == "old key");

  std::string new_value = seal(ba, *opened.plaintext, aad);
  BOOST_TEST(new_value.starts_with("esd1:B:"));
  BOOST_TEST(*open_sealed(ba, new_value, aad).plaintext == "old key");
  // Once A is retired, the old value no longer opens and says why.
  auto b = ring_of({{"B", 'b'}});
  BOOST_TEST(open_sealed(b, old_value, aad).error == "sealed with unknown key id A");
  BOOST_TEST(static_cast<bool>(open_sealed(b, new_value, aad)));
  // The ring before rotation cannot open values sealed after it.
  BOOST_TEST(open_sealed(a, new_value, aad).error == "sealed with unknown key id B");
}

BOOST_AUTO_TEST_CASE(sealed_text_never_contains_the_plaintext) {
  auto ring = ring_of({{"k1", 'a'}});
  std::string plain = jwt_like(2048);
  std::string sealed = seal(ring, plain, aad);
  BOOST_TEST(!contains(sealed, plain.substr(0, 16)));
  BOOST_TEST(!contains(sealed, plain.substr(1000, 16)));
  BOOST_TEST(!contains(sealed, base64url_encode(plain).substr(0, 16)));
  BOOST_TEST(!contains(sealed, key_b64('a').substr(0, 16)));
}

BOOST_AUTO_TEST_CASE(keyring_file_allows_comments_blank_lines_tabs_and_crlf) {
  std::string text = "# rotated 2024-06\r\n\r\n   \n  next\t" + key_b64('n') + "  \r\n# old:\nold.key-1 " +
                     key_b64('o');  // no final newline
  auto ring = keyring::parse(text);
  BOOST_TEST(ring.size() == 2u);
  BOOST_TEST(ring.current_id() == "next");
  BOOST_TEST(ring.has("old.key-1"));
  std::string id32(32, 'x');
  BOOST_TEST(keyring::parse(id32 + " " + key_b64('a')).current_id() == id32);
}

BOOST_AUTO_TEST_CASE(keyring_parse_errors_name_the_line_and_never_the_key) {
  std::string good = "k0 " + key_b64('0') + "\n";
  std::string key = key_b64('a');
  struct bad_case {
    std::string text;
    std::string line;
    std::string what;
  };
  std::string short_key = standard_base64(key_bytes('a').substr(0, 31));
  std::string long_key = standard_base64(key_bytes('a') + "x");
  std::string bad_pad = key.substr(0, 43);                          // padding missing
  std::string bad_char = key.substr(0, 10) + "!" + key.substr(11);  // not in the alphabet
  std::string url_alphabet = key.substr(0, 10) + "-" + key.substr(11);
  std::string noncanonical = key.substr(0, 42) + "B=";  // 'B' sets one of the two unused low bits
  for (const bad_case& c : std::initializer_list<bad_case>{
           {good + "# c\nk1 " + bad_pad, "line 3:", "base64"},
           {good + "k1 " + bad_char, "line 2:", "base64"},
           {good + "k1 " + url_alphabet, "line 2:", "base64"},
           {good + "\nk1 " + short_key, "line 3:", "decodes to 31 bytes"},
           {good + "k1 " + long_key, "line 2:", "decodes to 33 bytes"},
           {good + "k1 " + key + "\n\nk0 " + key_b64('b'), "line 4:", "\"k0\" is already used on line 1"},
           {"bad/id " + key, "line 1:", "key id has a character"},
           {"k\xc3\xa9y " + key, "line 1:", "key id has a character"},
           {std::string(33, 'x') + " " + key, "line 1:", "33 characters long"},
           {good + key, "line 2:", "single field"},
           {good + key + " k1", "line 2:", "key id"},
           {good + "k1 " + key + " extra", "line 2:", "more than two fields"},
           {good + "k1 " + key.substr(0, 20) + " " + key.substr(20), "line 2:", "more than two fields"},
       }) {
    std::string msg = parse_error(c.text);
    BOOST_TEST(msg.starts_with(c.line), msg);
    BOOST_TEST(contains(msg, c.what), msg);
    for (const std::string& secret : {key, key_b64('0'), key_b64('b'), short_key, long_key})
      BOOST_TEST(!contains(msg, secret.substr(0, 8)), msg);
  }
  BOOST_TEST(contains(parse_error("k1 " + noncanonical), "base64"));

  for (const std::string& empty :
       {std::string(), std::string("\n\n"), std::string("# only a comment\n  \n")}) {
    std::string msg = parse_error(empty);
    BOOST_TEST(contains(msg, "no key found"), msg);
  }
}

BOOST_AUTO_TEST_CASE(load_file_reads_a_keyring_and_names_the_path_on_failure) {
  char dir_template[] = "/tmp/key_sealing_test.XXXXXX";
  BOOST_TEST_REQUIRE(mkdtemp(dir_template) != nullptr);
  std::string dir = dir_template;
  std::string path = dir + "/keys";
  {
    std::ofstream out(path);
    out << "# keys\nB " << key_b64('b') << "\nA " << key_b64('a') << "\n";
  }
  auto ring = keyring::load_file(path);
  BOOST_TEST(ring.current_id() == "B");
  BOOST_TEST(ring.size() == 2u);

  std::string missing = dir + "/no-such-file";
  try {
    keyring::load_file(missing);
    BOOST_FAIL("missing file accepted");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(contains(e.what(), missing), e.what());
    BOOST_TEST(contains(e.what(), "No such file"), e.what());
  }
  try {
    keyring::load_file(dir);
    BOOST_FAIL("directory accepted");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(contains(e.what(), dir), e.what());
  }
  {
    std::ofstream out(path);
    out << "A " << key_b64('a') << "\nA " << key_b64('b') << "\n";
  }
  try {
    keyring::load_file(path);
    BOOST_FAIL("duplicate accepted");
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    BOOST_TEST(contains(msg, path), msg);
    BOOST_TEST(contains(msg, "line 2:"), msg);
    BOOST_TEST(!contains(msg, key_b64('b').substr(0, 8)), msg);
  }
  std::remove(path.c_str());
  rmdir(dir.c_str());
}

// The fingerprint compare-and-set uses must be the one PostgreSQL computes with
// encode(sha256(convert_to(column, 'UTF8')), 'hex') (checked against the database in the keys tests).
BOOST_AUTO_TEST_CASE(stored_key_fingerprint_is_hex_sha256) {
  BOOST_TEST(esd::db::stored_key_fingerprint("abc") ==
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  BOOST_TEST(esd::db::stored_key_fingerprint("") ==
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(esd::db::stored_key_fingerprint("esd1:k1:abc") != esd::db::stored_key_fingerprint("esd1:k2:abc"));
}
