#include "common/address_set.hpp"

#include <arpa/inet.h>
#include <cstring>

#include "common/text.hpp"

namespace crmsync {

namespace {

/// Reads an address literal into 16 bytes; an IPv4 address (or an
/// IPv4-mapped IPv6 one) fills the first 4 and sets v6 false.
bool read_address(std::string_view text, unsigned char out[16], bool& v6) {
  std::string s{text};
  std::memset(out, 0, 16);
  if (inet_pton(AF_INET, s.c_str(), out) == 1) {
    v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out) != 1)
    return false;
  static const unsigned char mapped[12]
      = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(out, mapped, sizeof(mapped)) == 0) {
    std::memmove(out, out + 12, 4);
    std::memset(out + 4, 0, 12);
    v6 = false;
    return true;
  }
  v6 = true;
  return true;
}

bool same_prefix(const unsigned char* a, const unsigned char* b, int bits) {
  int whole = bits / 8;
  if (std::memcmp(a, b, static_cast<size_t>(whole)) != 0)
    return false;
  int rest = bits % 8;
  if (rest == 0)
    return true;
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

} // namespace

bool address_set::parse(const std::vector<std::string>& entries,
                        address_set& out, std::string& err) {
  address_set set;
  for (const auto& raw : entries) {
    auto entry = trim_blanks(raw);
    auto slash = entry.find('/');
    range r;
    bool ok = read_address(entry.substr(0, slash), r.bytes, r.v6);
    int max_bits = r.v6 ? 128 : 32;
    r.bits = max_bits;
    if (ok && slash != std::string_view::npos) {
      auto digits = entry.substr(slash + 1);
      ok = !digits.empty() && digits.size() <= 3;
      int bits = 0;
      for (char c : digits) {
        if (c < '0' || c > '9') {
          ok = false;
          break;
        }
        bits = bits * 10 + (c - '0');
      }
      ok = ok && bits <= max_bits;
      r.bits = bits;
    }
    if (!ok) {
      err = "'" + raw + "' is neither an IP address nor a CIDR range";
      return false;
    }
    set.ranges_.push_back(r);
  }
  out = std::move(set);
  return true;
}

bool address_set::contains(std::string_view address) const {
  unsigned char bytes[16];
  bool v6 = false;
  if (!read_address(trim_blanks(address), bytes, v6))
    return false;
  for (const auto& r : ranges_)
    if (r.v6 == v6 && same_prefix(r.bytes, bytes, r.bits))
      return true;
  return false;
}

std::string host_of(const std::string& remote) {
  auto colon = remote.rfind(':');
  if (colon == std::string::npos)
    return remote;
  auto host = remote.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return host;
}

} // namespace crmsync
