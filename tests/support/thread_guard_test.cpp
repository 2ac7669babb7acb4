// thread_guard: a test's helper threads are stopped and joined whichever
// way the test's scope ends, so a failing REQUIRE is reported by Catch2
// instead of aborting the binary (a joinable std::thread's destructor
// calls std::terminate).
#include "tests/support/thread_guard.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>

using crmsync::test::thread_guard;

TEST_CASE("thread_guard stops and joins its threads when an exception "
          "leaves the scope") {
  std::atomic<bool> stop{false};
  std::atomic<int> finished{0};
  std::atomic<int> stops{0};
  bool caught = false;
  try {
    thread_guard threads([&] {
      ++stops;
      stop = true;
    });
    for (int i = 0; i < 3; ++i)
      threads.spawn([&] {
        while (!stop)
          std::this_thread::yield();
        ++finished;
      });
    REQUIRE(threads.size() == 3);
    // What a failing REQUIRE does while the threads run.
    throw std::runtime_error("failed");
  } catch (const std::runtime_error&) {
    caught = true;
  }
  CHECK(caught);
  // Had a thread still been joinable, the binary would have aborted above.
  CHECK(finished == 3);
  CHECK(stops == 1);
}

TEST_CASE("thread_guard::join stops once and waits for threads that end by "
          "themselves") {
  std::atomic<int> stops{0};
  std::atomic<int> finished{0};
  {
    thread_guard threads([&] { ++stops; });
    threads.spawn([&] { ++finished; });
    threads.spawn([&] { ++finished; });
    threads.join();
    CHECK(finished == 2);
    CHECK(stops == 1);
    threads.join(); // again, and once more on scope exit: nothing to do
  }
  CHECK(stops == 1);
  thread_guard none; // no stop callback, no threads
  none.join();
  CHECK(none.size() == 0);
}
