#include "storage/group_commit.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.hpp"
#include "tests/support/test_db.hpp"

using namespace crmsync;
using crmsync::storage::column;

using crmsync::test::open_db;
using crmsync::test::read_or_absent;

TEST_CASE("a lone batch is written before submit returns", "[storage][group]") {
  test::temp_dir dir;
  auto d = open_db(dir.path());
  storage::group_commit g{*d};
  storage::write_batch b;
  b.put(column::inbox, "k1", "c");
  bool called = false;
  g.submit(std::move(b), [&](const caf::error& err) {
    CHECK_FALSE(err);
    // Stored before the caller hears of it.
    CHECK(read_or_absent(*d, column::inbox, "k1") == "c");
    called = true;
  });
  CHECK(called);
  CHECK(g.counts().batches == 1);
  CHECK(g.counts().writes == 1);
}

TEST_CASE("batches submitted during a write go together in the next one, "
          "later operations on a key winning",
          "[storage][group]") {
  test::temp_dir dir;
  auto d = open_db(dir.path());
  storage::group_commit g{*d};
  // The first submitter's callback holds the write loop while others
  // queue: they must be answered by that thread, in one more write.
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  // Catch's assertions are made on this thread only: the other one
  // counts what it saw.
  std::atomic<int> answered{0}, failed{0}, stale{0};
  std::thread first{[&] {
    storage::write_batch b;
    b.put(column::inbox, "a", "1");
    g.submit(std::move(b), [&](const caf::error& err) {
      failed += err ? 1 : 0;
      std::unique_lock<std::mutex> lock{m};
      cv.wait(lock, [&] { return release; });
      ++answered;
    });
  }};
  // Wait until the first write is under way (its batch counted, the
  // writer inside the callback).
  while (g.counts().writes < 1)
    std::this_thread::yield();
  for (int i = 0; i < 5; ++i) {
    storage::write_batch b;
    b.put(column::inbox, "b", std::to_string(i)); // the same key five times
    if (i == 3)
      b.del(column::inbox, "a");
    std::atomic<bool> ran{false};
    g.submit(std::move(b), [&](const caf::error& err) {
      failed += err ? 1 : 0;
      // Stored (with the last value of the group) before the answer.
      std::string v;
      bool found = false;
      if (d->get(column::inbox, "b", v, found) || !found || v != "4")
        ++stale;
      ran = true;
      ++answered;
    });
    CHECK_FALSE(ran); // queued: the writing thread answers
  }
  {
    std::lock_guard<std::mutex> guard{m};
    release = true;
  }
  cv.notify_all();
  first.join();
  CHECK(answered == 6);
  CHECK(failed == 0);
  CHECK(stale == 0);
  CHECK(g.counts().batches == 6);
  CHECK(g.counts().writes == 2);
  CHECK(read_or_absent(*d, column::inbox, "a") == "<absent>");
  CHECK(read_or_absent(*d, column::inbox, "b") == "4");
  CHECK(d->rows(column::inbox) == 1);
}

TEST_CASE("a caller's callback that throws does not stop the group",
          "[storage][group]") {
  test::temp_dir dir;
  auto d = open_db(dir.path());
  storage::group_commit g{*d};
  // The writer goes on, and the next submit writes again.
  storage::write_batch b;
  b.put(column::inbox, "k", "c");
  g.submit(std::move(b), [](const caf::error&) {
    throw std::runtime_error("caller failed");
  });
  storage::write_batch b2;
  b2.put(column::inbox, "k2", "c");
  bool called = false;
  g.submit(std::move(b2), [&](const caf::error& err) {
    CHECK_FALSE(err);
    called = true;
  });
  CHECK(called);
  CHECK(g.counts().writes == 2);
}
