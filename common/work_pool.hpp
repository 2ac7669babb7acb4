// A fixed set of threads for blocking work (password hashing).
//
// Event-based actors and I/O threads must never run a slow KDF; they post
// it here. Jobs run in submission order on `n` threads; the destructor lets
// queued jobs finish. A job that throws is logged and dropped. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace crmsync {

class work_pool {
public:
  /// `name` names its threads (see common/thread_name.hpp).
  explicit work_pool(size_t n, std::string name = "work-pool");
  ~work_pool();
  work_pool(const work_pool&) = delete;
  work_pool& operator=(const work_pool&) = delete;

  void post(std::function<void()> job);

  /// Queues the job unless `max_queued` jobs already wait; false if full.
  bool try_post(std::function<void()> job, size_t max_queued);

private:
  void run();
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace crmsync
