#include "common/fair_pool.hpp"

#include <algorithm>
#include <exception>

#include "common/log.hpp"
#include "common/thread_name.hpp"

namespace crmsync {

fair_pool::fair_pool(size_t threads, std::string name) {
  for (size_t i = 0; i < std::max<size_t>(1, threads); ++i)
    threads_.emplace_back([this, name] {
      name_this_thread(name);
      run();
    });
}

fair_pool::~fair_pool() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    t.join();
}

fair_pool::admission fair_pool::try_post(const std::string& caller,
                                         std::function<void()> job,
                                         size_t max_queued, size_t per_caller) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = callers_.find(caller);
    if (i != callers_.end() && i->second.outstanding >= per_caller)
      return admission::caller_full;
    if (queued_ >= max_queued)
      return admission::pool_full;
    auto& c = callers_[caller];
    if (c.jobs.empty())
      turn_.push_back(caller);
    c.jobs.push_back(std::move(job));
    ++c.outstanding;
    ++queued_;
  }
  cv_.notify_one();
  return admission::queued;
}

size_t fair_pool::queued() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return queued_;
}

void fair_pool::run() {
  for (;;) {
    std::function<void()> job;
    std::string caller;
    {
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait(lock, [this] { return stopping_ || !turn_.empty(); });
      if (turn_.empty())
        return;
      caller = std::move(turn_.front());
      turn_.pop_front();
      auto& c = callers_[caller];
      job = std::move(c.jobs.front());
      c.jobs.pop_front();
      --queued_;
      // Back of the line: every other waiting caller goes first.
      if (!c.jobs.empty())
        turn_.push_back(caller);
    }
    try {
      job();
    } catch (const std::exception& e) {
      log::error(std::string{"fair pool: job failed: "} + e.what());
    }
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = callers_.find(caller);
    if (i != callers_.end() && --i->second.outstanding == 0)
      callers_.erase(i);
  }
}

} // namespace crmsync
