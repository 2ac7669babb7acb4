// The threads a test starts, stopped and joined on every way out of the
// test's scope.
//
// A std::thread destroyed while joinable calls std::terminate: a REQUIRE
// that fails (Catch2 throws) while a test's helper thread runs would abort
// the whole binary and lose Catch2's report of that failure and of every
// later test. A thread_guard owns those threads instead. When the scope
// ends, normally or by an exception, it first runs its `stop` callback
// once (e.g. sets the atomic flag the threads loop on), then joins them.
// Declare it after everything its threads use, so it goes first.
// Owned and driven by the one test thread that made it.
#pragma once

#include <functional>
#include <thread>
#include <utility>
#include <vector>

namespace crmsync::test {

class thread_guard {
public:
  /// `stop` tells the threads to finish; none when they end by themselves.
  explicit thread_guard(std::function<void()> stop = {})
      : stop_(std::move(stop)) {}
  thread_guard(const thread_guard&) = delete;
  thread_guard& operator=(const thread_guard&) = delete;
  ~thread_guard() {
    join();
  }

  /// Starts a thread running `f` that the guard owns.
  template <class F>
  void spawn(F&& f) {
    threads_.emplace_back(std::forward<F>(f));
  }

  /// Runs `stop` (the first time only), then joins every thread started so
  /// far. The success path calls it where the test needs the threads done.
  void join() noexcept {
    if (stop_) {
      auto stop = std::move(stop_);
      stop_ = nullptr;
      stop();
    }
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }

  size_t size() const {
    return threads_.size();
  }

private:
  std::function<void()> stop_;
  std::vector<std::thread> threads_;
};

} // namespace crmsync::test
