// graph-emulator's HTTP service: Microsoft Graph v1.0 (users, calendars,
// events, sendMail), the identity platform's token endpoint, and the
// /_emulator control API, on the wire formats of the real services.
//
// Handlers run on the HTTP server's I/O threads and answer synchronously;
// one mutex guards the in-memory directory. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "emulator/notifier.hpp"
#include "http/server.hpp"

namespace crmsync::emulator {

struct service_config {
  /// Lifetime of issued access tokens.
  std::chrono::seconds token_lifetime{3600};
  /// Outlook's per-(app, mailbox) limit: requests per window (429 beyond).
  size_t mailbox_requests_per_window = 10000;
  std::chrono::seconds mailbox_window{600};
  /// Outlook's per-(app, mailbox) limit on requests in flight.
  size_t mailbox_concurrency = 4;
  /// Longest subscription lifetime accepted (longer -> 400, no clamping).
  std::chrono::minutes max_subscription_lifetime{4230};
  /// Change-log entries per calendar kept before the first compaction
  /// (delta rounds need the writes after their token).
  size_t change_log_floor = 4096;
  /// How notifications are delivered (timeouts, retries, trusted CAs).
  notifier_config notifications;
  /// Wall clock in UTC milliseconds (injectable for tests).
  std::function<int64_t()> now_ms;
};

class service {
public:
  explicit service(service_config cfg);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  void handle(http::request&& req, http::responder_ptr r);

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace crmsync::emulator
