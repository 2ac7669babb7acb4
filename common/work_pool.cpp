#include "common/work_pool.hpp"

#include <exception>
#include <string>

#include "common/log.hpp"
#include "common/thread_name.hpp"

namespace crmsync {

work_pool::work_pool(size_t n, std::string name) {
  for (size_t i = 0; i < std::max<size_t>(1, n); ++i)
    threads_.emplace_back([this, name] {
      name_this_thread(name);
      run();
    });
}

work_pool::~work_pool() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    t.join();
}

void work_pool::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

bool work_pool::try_post(std::function<void()> job, size_t max_queued) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (jobs_.size() >= max_queued)
      return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void work_pool::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty())
        return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    try {
      job();
    } catch (const std::exception& e) {
      log::error(std::string{"work pool: job failed: "} + e.what());
    }
  }
}

} // namespace crmsync
