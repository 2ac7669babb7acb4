// The adaptive idle time of calendars and mailboxes (actors/idle_ladder.hpp):
// an entity back within the idle time it had gets twice that, up to the
// cap; one away longer starts again at the base; and a passivated entity
// is forgotten once its idle time has passed, so idle users cost no memory
// in the ladder.
#include "actors/idle_ladder.hpp"

#include <catch2/catch.hpp>

using namespace crmsync;
using namespace std::chrono_literals;

namespace {

entity_key calendar_of(uint64_t user) {
  return entity_key{entity_kind::calendar, tenant_id{7}, user_id{user}};
}

} // namespace

TEST_CASE("an entity back soon after its passivation stays longer next time",
          "[actors][idle_ladder]") {
  actors::idle_ladder ladder{10s, 300s};
  actors::idle_ladder::time_point t{};
  auto key = calendar_of(1);
  uint8_t rung = ladder.activated(key, t);
  CHECK(rung == 0);
  CHECK(ladder.idle_after(rung) == 10s);
  // Each time back within the idle time it had: twice that, up to the cap.
  std::vector<std::chrono::milliseconds> seen;
  for (int i = 0; i < 7; ++i) {
    t += ladder.idle_after(rung);
    ladder.passivated(key, rung, t);
    t += 3s;
    rung = ladder.activated(key, t);
    seen.push_back(ladder.idle_after(rung));
  }
  CHECK(seen
        == std::vector<std::chrono::milliseconds>{20s, 40s, 80s, 160s, 300s,
                                                  300s, 300s});
  // Away longer than its idle time (300 s): back to the base.
  t += 300s;
  ladder.passivated(key, rung, t);
  t += 301s;
  CHECK(ladder.activated(key, t) == 0);
}

TEST_CASE("an entity away longer than its idle time starts at the base",
          "[actors][idle_ladder]") {
  actors::idle_ladder ladder{10s, 300s};
  actors::idle_ladder::time_point t{};
  auto key = calendar_of(2);
  ladder.passivated(key, 0, t);
  // A reconciliation every few minutes: no climb, whatever the count.
  for (int i = 0; i < 5; ++i) {
    t += 290s;
    CHECK(ladder.activated(key, t) == 0);
    t += 10s;
    ladder.passivated(key, 0, t);
  }
  // Each key climbs on its own.
  auto other = calendar_of(3);
  ladder.passivated(other, 0, t);
  CHECK(ladder.activated(other, t + 9s) == 1);
  CHECK(ladder.activated(key, t + 11s) == 0);
}

TEST_CASE("passivated entities are forgotten once their idle time passed",
          "[actors][idle_ladder]") {
  actors::idle_ladder ladder{10s, 300s};
  actors::idle_ladder::time_point t{};
  for (uint64_t u = 1; u <= 1000; ++u)
    ladder.passivated(calendar_of(u), u % 2 == 0 ? 0 : 2, t);
  CHECK(ladder.remembered() == 1000);
  ladder.forget_old(t + 9s);
  CHECK(ladder.remembered() == 1000);
  ladder.forget_old(t + 10s); // the rung-0 ones: 10 s
  CHECK(ladder.remembered() == 500);
  ladder.forget_old(t + 40s); // the rung-2 ones: 40 s
  CHECK(ladder.remembered() == 0);
  // A key passivated again later keeps its newer entry.
  auto key = calendar_of(5);
  ladder.passivated(key, 0, t);
  CHECK(ladder.activated(key, t + 1s) == 1);
  ladder.passivated(key, 1, t + 5s);
  ladder.forget_old(t + 12s); // the first passivation's expiry
  CHECK(ladder.remembered() == 1);
  CHECK(ladder.activated(key, t + 20s) == 2);
}
