#include "common/request_id.hpp"

#include <cstdint>

#include "common/crypto.hpp"

namespace crmsync {

namespace {

/// splitmix64's finalizer: a bijection of 64-bit values that spreads every
/// input bit over the output.
uint64_t mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

} // namespace

std::string new_request_id() {
  // Per thread: a random key drawn once, then a counter through the mixer.
  // Distinct on one thread (a bijection of the counter), unrelated between
  // threads and nodes (their keys), and no system call per request (a
  // random_guid() per request cost a getrandom call each).
  thread_local const uint64_t key_hi = crypto::random_u64();
  thread_local const uint64_t key_lo = crypto::random_u64();
  thread_local uint64_t counter = 0;
  const uint64_t n = counter++;
  const uint64_t words[2] = {mix(key_hi + n), mix(key_lo ^ n)};
  unsigned char b[16];
  for (int i = 0; i < 16; ++i)
    b[i] = static_cast<unsigned char>(words[i / 8] >> (8 * (i % 8)));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40); // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80); // RFC 4122 variant
  static const char hex[] = "0123456789abcdef";
  std::string out(36, '-');
  size_t at = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      ++at;
    out[at++] = hex[b[i] >> 4];
    out[at++] = hex[b[i] & 0x0f];
  }
  return out;
}

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > max_request_id_size)
    return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9');
    if (!ok) {
      switch (c) {
        case '-':
        case '_':
        case '.':
        case ':':
        case '=':
        case '+':
        case '/':
        case '@':
          ok = true;
          break;
        default:
          break;
      }
    }
    if (!ok)
      return false;
  }
  return true;
}

std::string request_id_or_new(std::string_view header) {
  return valid_request_id(header) ? std::string{header} : new_request_id();
}

std::string choose_request_id(std::string_view header,
                              const std::string& remote,
                              const address_set& trusted) {
  return trusted.contains(host_of(remote)) ? request_id_or_new(header)
                                           : new_request_id();
}

} // namespace crmsync
