// Sets of IP addresses given as addresses and CIDR ranges ("10.0.0.0/8",
// "fd00::/8", "127.0.0.1"): the reverse proxies a node trusts
// (--trusted-proxies) for X-Forwarded-For and X-Request-Id.
// Built once at start-up, then read-only: safe to use from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace crmsync {

class address_set {
public:
  /// Reads "ADDRESS" and "ADDRESS/BITS" entries (IPv4 or IPv6; blanks
  /// around an entry are ignored). False with `err` naming the first entry
  /// that is neither, and `out` unchanged.
  static bool parse(const std::vector<std::string>& entries, address_set& out,
                    std::string& err);

  /// Whether `address`, an IPv4 or IPv6 literal, lies in one of the
  /// ranges; an IPv4-mapped IPv6 address counts as its IPv4 address.
  /// Anything that is not an address is in no range.
  bool contains(std::string_view address) const;

  bool empty() const {
    return ranges_.empty();
  }

private:
  struct range {
    bool v6 = false;
    unsigned char bytes[16] = {};
    int bits = 0;
  };
  std::vector<range> ranges_;
};

/// The host of a peer as the HTTP server writes it: "1.2.3.4:5" ->
/// "1.2.3.4", "::1:5" -> "::1" (v6 without brackets), "[::1]:5" -> "::1".
std::string host_of(const std::string& remote);

} // namespace crmsync
