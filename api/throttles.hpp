// Limits on the work strangers can make a node do, per client: how often
// a sign-in may start from one address (token bucket), how many wrong
// passwords an account or an address may give before it has to wait
// (exponential backoff), and which caller a password hashing job is
// charged to in the hashing pool's fair share (common/fair_pool.hpp).
//
// Owned by the API and shared by its routes (api_impl.hpp has the one-line
// helpers routes call: admit_signin, admit_password, password_failed,
// password_ok, hash_then). Every table is bounded (common/rate_limit.hpp).
// Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/address_set.hpp"
#include "common/rate_limit.hpp"
#include "http/server.hpp"

namespace crmsync::http {

struct throttle_config {
  /// Sign-in starts (/o365/signin, /o365/install, /invite/{token}) per
  /// client address.
  token_bucket_config signin{20, 20, 100000};
  /// Wrong passwords per account (e-mail address) ...
  backoff_config account_failures{5, std::chrono::seconds(1),
                                  std::chrono::minutes(15),
                                  std::chrono::hours(1), 100000};
  /// ... and per client address (guessing many accounts).
  backoff_config source_failures{20, std::chrono::seconds(1),
                                 std::chrono::minutes(15),
                                 std::chrono::hours(1), 100000};
  /// Peers whose X-Forwarded-For names the client (reverse proxies):
  /// addresses and CIDR ranges (common/address_set.hpp).
  std::vector<std::string> trusted_proxies;
  /// Password hashing: jobs queued in all, the part of them callers that
  /// are not signed in (addresses) may take, and one caller's share
  /// (queued or running).
  size_t hash_queue = 64;
  size_t hash_queue_anonymous = 48;
  size_t hash_per_caller = 4;
};

class throttles {
public:
  throttles(throttle_config cfg, clock_ms now);

  const throttle_config& config() const {
    return cfg_;
  }

  /// The client's address: the peer's, or behind a trusted proxy the
  /// rightmost X-Forwarded-For entry that is not a trusted proxy. An IPv6
  /// address counts as its /64 (what one subscriber gets).
  std::string client_of(const request& req) const;

  /// Zero when `client` may start a sign-in (a token is taken), otherwise
  /// how long it must wait.
  std::chrono::milliseconds signin_start(const std::string& client);

  /// Zero when a password for `account` may be checked for `client`,
  /// otherwise how long the longer of their backoffs still lasts.
  std::chrono::milliseconds password_wait(const std::string& client,
                                          const std::string& account);
  /// A wrong password; returns the account's wrong passwords in a row.
  uint32_t password_failed(const std::string& client,
                           const std::string& account);
  /// The right password: the account's failures are forgotten (the
  /// address's are not: one known password must not clear a guesser).
  void password_ok(const std::string& account);
  /// Whether an account's `failures` in a row have started a backoff (an
  /// audit entry is due); the wait that it imposes.
  bool backing_off(uint32_t failures) const;
  std::chrono::milliseconds account_wait_after(uint32_t failures) const;

private:
  throttle_config cfg_;
  token_buckets signin_;
  failure_backoff accounts_;
  failure_backoff sources_;
  address_set trusted_;
};

/// The address part of "HOST:PORT" / "V6:PORT", normalized: IPv4 as is,
/// IPv4-mapped IPv6 as IPv4, other IPv6 as "PREFIX::/64". Anything that is
/// not an address comes back unchanged.
std::string address_key(const std::string& host);

/// 429 with Retry-After (whole seconds, at least 1) and the error body
/// every route uses (code "too_many_requests").
response too_many_requests(std::chrono::milliseconds wait,
                           const std::string& message);

} // namespace crmsync::http
