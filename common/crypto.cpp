#include "common/crypto.hpp"
#include "common/known_length_secret.hpp"

#include <cstdint>
#include <sodium.h>
#include <stdexcept>
#include <vector>

namespace crmsync::crypto {

bool init() {
  return sodium_init() >= 0;
}

std::string base64url(std::string_view bytes) {
  std::string out(sodium_base64_encoded_len(
                      bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(),
                    reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1); // drop the terminating NUL
  return out;
}

std::string random_token(size_t n_bytes) {
  std::string raw(n_bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  return base64url(raw);
}

uint64_t random_u64() {
  uint64_t x;
  randombytes_buf(&x, sizeof(x));
  return x;
}

std::string random_guid() {
  unsigned char b[16];
  randombytes_buf(b, sizeof(b));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40); // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80); // RFC 4122 variant
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out += '-';
    out += hex[b[i] >> 4];
    out += hex[b[i] & 0x0f];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(
      digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
  return std::string(hex, crypto_hash_sha256_BYTES * 2);
}

std::string hash_password(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(),
                        crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE)
      != 0)
    // Only fails when the machine cannot spare the KDF's memory.
    throw std::runtime_error("password hashing ran out of memory");
  return out;
}

bool verify_password(std::string_view password, const std::string& stored) {
  if (stored.empty() || stored.size() >= crypto_pwhash_STRBYTES)
    return false;
  return crypto_pwhash_str_verify(stored.c_str(), password.data(),
                                  password.size())
         == 0;
}

bool equal_secret(std::string_view a, std::string_view b) {
  // Compare digests so that the comparison time does not depend on where
  // the inputs differ nor (beyond hashing) on their lengths.
  auto da = sha256_hex(a);
  auto db = sha256_hex(b);
  return sodium_memcmp(da.data(), db.data(), da.size()) == 0;
}

bool equal_known_length(std::string_view secret, std::string_view given) {
  if (secret.size() != given.size())
    return false;
  return secret.empty()
         || sodium_memcmp(secret.data(), given.data(), secret.size()) == 0;
}

} // namespace crmsync::crypto
