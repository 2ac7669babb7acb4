// Threads for blocking work that many callers submit (password hashing),
// shared fairly: every job carries its caller's key (a client address, an
// account, a token), a caller may have at most `per_caller` jobs queued or
// running, and the threads take jobs round-robin across callers. One
// caller flooding the pool therefore neither fills its queue nor delays
// another caller's job by more than one job per thread.
//
// The destructor lets queued jobs finish. A job that throws is logged and
// dropped. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace crmsync {

class fair_pool {
public:
  enum class admission {
    queued,
    caller_full, ///< this caller already has its share queued or running
    pool_full,   ///< `max_queued` jobs of all callers wait already
  };

  /// `name` names its threads (see common/thread_name.hpp).
  explicit fair_pool(size_t threads, std::string name = "fair-pool");
  ~fair_pool();
  fair_pool(const fair_pool&) = delete;
  fair_pool& operator=(const fair_pool&) = delete;

  /// Queues `job` for `caller` unless the caller has `per_caller` jobs
  /// queued or running, or `max_queued` jobs wait in all.
  admission try_post(const std::string& caller, std::function<void()> job,
                     size_t max_queued, size_t per_caller);

  /// Jobs queued, not yet running (all callers).
  size_t queued() const;

private:
  struct caller_jobs {
    std::deque<std::function<void()>> jobs;
    size_t outstanding = 0; ///< queued or running
  };
  void run();
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::unordered_map<std::string, caller_jobs> callers_;
  /// Callers with queued jobs, in the order they get a thread next.
  std::deque<std::string> turn_;
  size_t queued_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace crmsync
