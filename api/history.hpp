// The admin page's chart history (t16-admin): the node keeps the last hour
// of the counters its charts plot, so that the page draws them when it
// opens instead of starting empty.
//
// Every `interval` a sampler thread reads the totals of each charted
// counter family from metrics::node() (e.g. HTTP requests by status class)
// and puts them in a fixed ring per series: window / interval points (360
// at the default 10 s), the oldest dropped first. GET /admin/v1/history
// serves them (api/history_api.cpp); the page turns consecutive totals into
// rates as it does with its own polls of /metrics.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace crmsync::http {

/// One sample of a series: the counter totals by key at `at_ms` (Unix
/// milliseconds).
struct history_point {
  int64_t at_ms = 0;
  std::map<std::string, double> values;
};

class chart_history {
public:
  /// The series, in the page's order: "http" (HTTP requests by status
  /// class), "graph" (Graph calls by status), "graph_throttled" (429s from
  /// Graph), "notifications" (Graph notifications by outcome).
  static const std::vector<std::string>& series_names();

  /// Keeps window / interval points per series (at least 2).
  explicit chart_history(std::chrono::milliseconds interval,
                         std::chrono::milliseconds window
                         = std::chrono::hours(1));
  ~chart_history();
  chart_history(const chart_history&) = delete;
  chart_history& operator=(const chart_history&) = delete;

  /// Starts the sampler thread: a sample now, then one every interval.
  void start();
  /// Ends it (also done by the destructor).
  void stop();

  /// Adds a point to `series` (a name of series_names()), dropping the
  /// oldest when the ring is full.
  void record(const std::string& series, history_point p);
  /// Records every series from metrics::node() at `at_ms`.
  void sample(int64_t at_ms);

  /// The points of `series`, oldest first.
  std::vector<history_point> points(const std::string& series) const;

  std::chrono::milliseconds interval() const {
    return interval_;
  }
  size_t capacity() const {
    return capacity_;
  }

private:
  struct ring {
    std::vector<history_point> slots;
    size_t next = 0; ///< where the next point goes
  };

  std::chrono::milliseconds interval_;
  size_t capacity_;
  mutable std::mutex mtx_;
  std::map<std::string, ring> rings_;

  std::mutex run_mtx_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread sampler_;
};

} // namespace crmsync::http
