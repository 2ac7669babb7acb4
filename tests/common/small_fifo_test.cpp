#include <catch2/catch.hpp>

#include <memory>

#include "common/small_fifo.hpp"

using crmsync::small_fifo;

TEST_CASE("small_fifo: first in, first out, through compactions",
          "[small_fifo]") {
  small_fifo<int> q;
  CHECK(q.empty());
  CHECK(q.size() == 0);
  int next_in = 0;
  int next_out = 0;
  // Uneven pushes and pops: the consumed front is dropped on the way.
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 7; ++i)
      q.push_back(next_in++);
    CHECK(q.back() == next_in - 1);
    for (int i = 0; i < 5; ++i) {
      REQUIRE_FALSE(q.empty());
      CHECK(q.front() == next_out++);
      q.pop_front();
    }
    CHECK(q.size() == static_cast<size_t>(next_in - next_out));
  }
  while (!q.empty()) {
    CHECK(q.front() == next_out++);
    q.pop_front();
  }
  CHECK(next_out == next_in);
  q.push_back(42);
  CHECK(q.front() == 42);
  CHECK(q.size() == 1);
}

TEST_CASE("small_fifo: take_all moves the items out in order and empties it",
          "[small_fifo]") {
  small_fifo<std::unique_ptr<int>> q;
  for (int i = 0; i < 20; ++i)
    q.push_back(std::make_unique<int>(i));
  q.pop_front();
  auto all = q.take_all();
  REQUIRE(all.size() == 19);
  for (int i = 0; i < 19; ++i)
    CHECK(*all[i] == i + 1);
  CHECK(q.empty());
  q.push_back(std::make_unique<int>(7));
  CHECK(*q.front() == 7);
}

TEST_CASE("small_fifo: a popped item is released at once", "[small_fifo]") {
  small_fifo<std::shared_ptr<int>> q;
  auto held = std::make_shared<int>(1);
  q.push_back(held);
  q.push_back(std::make_shared<int>(2));
  CHECK(held.use_count() == 2);
  q.pop_front();
  CHECK(held.use_count() == 1);
}
