#include "api/throttles.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>

#include "api/api.hpp"
#include "common/text.hpp"

namespace crmsync::http {

namespace {

bool is_address(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1
         || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

} // namespace

std::string address_key(const std::string& host) {
  unsigned char v6[16];
  if (inet_pton(AF_INET6, host.c_str(), v6) != 1)
    return host;
  char text[INET6_ADDRSTRLEN];
  static const unsigned char mapped[12]
      = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6, mapped, sizeof(mapped)) == 0) {
    inet_ntop(AF_INET, v6 + 12, text, sizeof(text));
    return text;
  }
  std::memset(v6 + 8, 0, 8);
  inet_ntop(AF_INET6, v6, text, sizeof(text));
  return std::string{text} + "/64";
}

throttles::throttles(throttle_config cfg, clock_ms now)
    : cfg_(std::move(cfg))
    , signin_(cfg_.signin, now)
    , accounts_(cfg_.account_failures, now)
    , sources_(cfg_.source_failures, now) {
  // crmsyncd checks the entries at start-up (exit 2 on a bad one).
  std::string ignored;
  address_set::parse(cfg_.trusted_proxies, trusted_, ignored);
}

std::string throttles::client_of(const request& req) const {
  // Forwarded inside a cluster ("node ID"): the name is all there is.
  if (req.remote.rfind("node ", 0) == 0)
    return req.remote;
  auto peer = host_of(req.remote);
  auto trusted = [this](const std::string& a) {
    return trusted_.contains(a);
  };
  if (!trusted(peer))
    return address_key(peer);
  // Each proxy appends the address it got the request from: the rightmost
  // entry that is not one of ours is the client; anything left of it is
  // whatever the client chose to send.
  std::string_view xff = req.header("x-forwarded-for");
  while (!xff.empty()) {
    auto comma = xff.rfind(',');
    auto entry = std::string{trim_blanks(
        comma == std::string_view::npos ? xff : xff.substr(comma + 1))};
    xff = comma == std::string_view::npos ? std::string_view{}
                                          : xff.substr(0, comma);
    if (trusted(entry))
      continue;
    return is_address(entry) ? address_key(entry) : address_key(peer);
  }
  return address_key(peer);
}

std::chrono::milliseconds throttles::signin_start(const std::string& client) {
  return signin_.take(client);
}

std::chrono::milliseconds throttles::password_wait(const std::string& client,
                                                   const std::string& account) {
  return std::max(sources_.wait(client), accounts_.wait(account));
}

uint32_t throttles::password_failed(const std::string& client,
                                    const std::string& account) {
  sources_.failed(client);
  return accounts_.failed(account);
}

void throttles::password_ok(const std::string& account) {
  accounts_.succeeded(account);
}

bool throttles::backing_off(uint32_t failures) const {
  return accounts_.wait_after(failures).count() > 0;
}

std::chrono::milliseconds
throttles::account_wait_after(uint32_t failures) const {
  return accounts_.wait_after(failures);
}

response too_many_requests(std::chrono::milliseconds wait,
                           const std::string& message) {
  auto res = error_response(api_error{429, "too_many_requests", message, ""});
  auto seconds = std::max<int64_t>(1, (wait.count() + 999) / 1000);
  res.headers.emplace_back("Retry-After", std::to_string(seconds));
  return res;
}

} // namespace crmsync::http
