// Delivery of change and lifecycle notifications to subscribers' URLs.
//
// One worker thread POSTs {"value":[…]} bodies, batching what is due for
// the same URL, expects a 2xx within the answer timeout, and retries with
// exponential backoff until the retry window has passed (Graph retries for
// up to 4 hours). Also runs the synchronous validation handshake. https
// URLs are reached with certificate verification. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace crmsync::emulator {

struct notifier_config {
  std::chrono::milliseconds answer_timeout{3000};
  std::chrono::milliseconds validation_timeout{10000};
  std::chrono::milliseconds first_retry{1000};
  std::chrono::milliseconds retry_window{std::chrono::hours(4)};
  /// Trusted for https notification URLs besides the system's CAs.
  std::string extra_ca_file;
};

struct notifier_stats {
  uint64_t delivered = 0; ///< notifications acknowledged with a 2xx
  uint64_t retried = 0;   ///< failed attempts that were rescheduled
  uint64_t dropped = 0;   ///< given up after the retry window
  /// Notifications queued or being posted now: 0 means everything enqueued
  /// so far was acknowledged or given up.
  uint64_t pending = 0;
};

class notifier {
public:
  explicit notifier(notifier_config cfg);
  ~notifier();
  notifier(const notifier&) = delete;
  notifier& operator=(const notifier&) = delete;

  /// Queues one notification object (JSON) for `url`, sent no earlier
  /// than `delay` from now.
  void enqueue(const std::string& url, std::string notification_json,
               std::chrono::milliseconds delay = {});

  /// The handshake: POST url?validationToken=T as text/plain; the receiver
  /// must answer 200 with exactly T within the validation timeout.
  bool validate(const std::string& url, std::string& err) const;

  notifier_stats stats() const;

private:
  struct item {
    std::string url;
    std::string json;
    std::chrono::steady_clock::time_point first_try;
    std::chrono::steady_clock::time_point due;
    std::chrono::milliseconds backoff;
  };

  void run();
  bool post(const std::string& url, const std::string& body,
            std::chrono::milliseconds timeout, int& status, std::string& answer,
            std::string& err) const;

  notifier_config cfg_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<item> queue_;
  size_t posting_ = 0; ///< notifications in the POST on the wire
  notifier_stats stats_;
  bool stopping_ = false;
  std::thread worker_;
};

/// Splits "http(s)://host[:port]/path?query"; `secure` tells https.
bool split_url(const std::string& url, bool& secure, std::string& host,
               uint16_t& port, std::string& target);

/// Splits "http://host[:port]/path?query"; false for anything else.
bool split_http_url(const std::string& url, std::string& host, uint16_t& port,
                    std::string& target);

} // namespace crmsync::emulator
