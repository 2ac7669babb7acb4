#include "common/fair_pool.hpp"

#include <catch2/catch.hpp>

#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <vector>

using namespace crmsync;
using admission = fair_pool::admission;

namespace {

/// Holds the pool's only thread until released.
struct gate {
  std::promise<void> opened;
  std::shared_future<void> open = opened.get_future().share();
  std::promise<void> entered;
};

} // namespace

TEST_CASE("fair pool: one caller cannot take more than its share",
          "[fair_pool]") {
  gate g;
  auto running = g.entered.get_future();
  fair_pool pool{1};
  auto open = g.open;
  REQUIRE(
      pool.try_post(
          "flood", [&g, open] { g.entered.set_value(), open.wait(); }, 64, 4)
      == admission::queued);
  running.wait();
  for (int i = 0; i < 3; ++i)
    REQUIRE(pool.try_post(
                "flood", [] {}, 64, 4)
            == admission::queued);
  // The flood's share is taken (one running, three queued)...
  CHECK(pool.try_post(
            "flood", [] {}, 64, 4)
        == admission::caller_full);
  // ... and another caller still gets in.
  std::promise<void> admin_ran;
  auto admin_done = admin_ran.get_future();
  CHECK(pool.try_post(
            "admin", [&admin_ran] { admin_ran.set_value(); }, 64, 4)
        == admission::queued);
  g.opened.set_value();
  admin_done.wait();
}

TEST_CASE("fair pool: the queue as a whole is bounded too", "[fair_pool]") {
  gate g;
  auto running = g.entered.get_future();
  fair_pool pool{1};
  auto open = g.open;
  REQUIRE(pool.try_post(
              "a", [&g, open] { g.entered.set_value(), open.wait(); }, 3, 8)
          == admission::queued);
  running.wait();
  CHECK(pool.try_post(
            "b", [] {}, 3, 8)
        == admission::queued);
  CHECK(pool.try_post(
            "c", [] {}, 3, 8)
        == admission::queued);
  CHECK(pool.try_post(
            "d", [] {}, 3, 8)
        == admission::queued);
  CHECK(pool.queued() == 3);
  CHECK(pool.try_post(
            "e", [] {}, 3, 8)
        == admission::pool_full);
  g.opened.set_value();
}

TEST_CASE("fair pool: callers take turns, whoever queued more", "[fair_pool]") {
  gate g;
  auto running = g.entered.get_future();
  std::mutex mtx;
  std::vector<std::string> order;
  {
    fair_pool pool{1};
    auto open = g.open;
    REQUIRE(pool.try_post(
                "x", [&g, open] { g.entered.set_value(), open.wait(); }, 64, 64)
            == admission::queued);
    running.wait();
    auto job = [&](std::string name) {
      return [&mtx, &order, name] {
        std::lock_guard<std::mutex> guard{mtx};
        order.push_back(name);
      };
    };
    for (int i = 0; i < 5; ++i)
      REQUIRE(pool.try_post("flood", job("flood"), 64, 64)
              == admission::queued);
    REQUIRE(pool.try_post("admin", job("admin"), 64, 64) == admission::queued);
    g.opened.set_value();
  } // the destructor lets queued jobs finish
  REQUIRE(order.size() == 6);
  // The admin's job runs second, not behind the whole flood.
  CHECK(order[0] == "flood");
  CHECK(order[1] == "admin");
}
