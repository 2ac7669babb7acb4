// A sliding-window rate cap: at most `limit` events in any `window_ms`.
//
// It remembers the times of the last `limit` events, so the cap holds in
// every window, not only in aligned seconds (a token bucket lets twice its
// rate through across a boundary). Shared by the reminders actor (delivery
// cap) and the Graph governor (app and tenant caps). Not thread-safe: the
// owning actor uses it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>

namespace crmsync::actors {

class rate_window {
public:
  explicit rate_window(uint32_t limit, int64_t window_ms = 1000)
      : limit_(std::max<uint32_t>(limit, 1)), window_ms_(window_ms) {
    // nop
  }

  /// The earliest time at or after `now` when one more event fits.
  int64_t next_free(int64_t now) const {
    if (times_.size() < limit_)
      return now;
    return std::max(now, times_.front() + window_ms_);
  }

  bool admits(int64_t now) const {
    return next_free(now) <= now;
  }

  /// Counts one event at `now` (the caller checked admits()).
  void record(int64_t now) {
    if (times_.size() == limit_)
      times_.pop_front();
    times_.push_back(now);
  }

  /// Whether no recorded event still counts at `now` (the window can be
  /// forgotten).
  bool idle(int64_t now) const {
    return times_.empty() || times_.back() + window_ms_ <= now;
  }

  uint32_t limit() const {
    return limit_;
  }

private:
  uint32_t limit_;
  int64_t window_ms_;
  std::deque<int64_t> times_;
};

} // namespace crmsync::actors
