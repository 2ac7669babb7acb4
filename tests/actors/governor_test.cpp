// The Graph governor on CAF's test coordinator (virtual time, no sleeps):
// the per-tenant and the per-app cap in any sliding second, fairness
// between a tenant with a long queue and one with a single request, and
// requests of a requester that died leaving the queues without a slot.
#include "actors/governor.hpp"

#include <algorithm>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>

#include "protocol/type_ids.hpp"

using namespace crmsync;
using namespace std::chrono_literals;

namespace {

struct test_config : caf::actor_system_config {
  test_config() {
    register_types(*this);
    set("scheduler.policy", caf::atom("testing"));
    set("logger.inline-output", true);
  }
};

/// A permit as a requester received it, with the virtual time.
struct grant {
  uint64_t tenant;
  int64_t at_ms;
};

struct fixture {
  test_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched
      = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  caf::actor_clock::time_point origin = sched.clock().now();
  std::shared_ptr<actors::actor_env> env;
  std::shared_ptr<std::vector<grant>> grants
      = std::make_shared<std::vector<grant>>();
  governor_actor governor;
  std::vector<caf::actor> requesters;

  fixture() {
    env = std::make_shared<actors::actor_env>();
    env->now_ms = [this] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 sched.clock().now() - origin)
          .count();
    };
  }

  ~fixture() {
    for (auto& r : requesters)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    if (governor)
      caf::anon_send_exit(governor, caf::exit_reason::user_shutdown);
    sched.run();
  }

  std::shared_ptr<actors::permit_gate> gate;

  void start(uint32_t app, uint32_t tenant) {
    actors::governor_config gc;
    gc.app_per_second = app;
    gc.tenant_per_second = tenant;
    gate = std::make_shared<actors::permit_gate>(gc, env->now_ms);
    governor = actors::spawn_governor(sys, gate);
    sched.run();
  }

  /// An actor asking `n` permits for `tenant` at once, recording each.
  caf::actor ask(uint64_t tenant, int n, int64_t not_after_ms = 0) {
    auto log = grants;
    auto clock = env->now_ms;
    auto gov = governor;
    auto r = sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      for (int i = 0; i < n; ++i)
        self->request(gov, std::chrono::seconds(86'400),
                      permit_request{tenant_id{tenant}, not_after_ms})
            .then(
                [=](graph_permit& p) {
                  log->push_back(grant{p.tenant.value, clock()});
                },
                [=](caf::error&) {
                  log->push_back(grant{0, clock()}); // refused
                });
      return {[](int) {
      }};
    });
    requesters.push_back(r);
    sched.run();
    return r;
  }

  void advance(std::chrono::milliseconds total,
               std::chrono::milliseconds step = 100ms) {
    for (auto t = 0ms; t < total; t += step) {
      sched.advance_time(step);
      sched.run();
    }
  }

  size_t granted_to(uint64_t tenant) const {
    return std::count_if(grants->begin(), grants->end(),
                         [&](const grant& g) { return g.tenant == tenant; });
  }

  /// The most grants (of `tenant`, or all when 0) in any sliding second.
  size_t busiest(uint64_t tenant = 0) const {
    std::vector<int64_t> at;
    for (auto& g : *grants)
      if (tenant == 0 || g.tenant == tenant)
        at.push_back(g.at_ms);
    std::sort(at.begin(), at.end());
    size_t most = 0;
    for (size_t i = 0, j = 0; i < at.size(); ++i) {
      while (j < at.size() && at[j] < at[i] + 1000)
        ++j;
      most = std::max(most, j - i);
    }
    return most;
  }

  governor_stats stats() {
    caf::scoped_actor self{sys};
    self->send(governor, atom::stats_atom_v);
    sched.run();
    governor_stats out;
    bool got = false;
    self->receive([&](governor_stats& s) {
      out = s;
      got = true;
    });
    REQUIRE(got);
    return out;
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "a tenant gets at most its rate",
                 "[actors][governor]") {
  start(100, 5);
  ask(1, 20);
  CHECK(grants->size() == 5);
  advance(1s);
  CHECK(grants->size() == 10);
  advance(2s);
  CHECK(grants->size() == 20);
  CHECK(busiest() == 5);
  // Another tenant is not held back by the first one's cap.
  ask(2, 3);
  CHECK(granted_to(2) == 3);
  auto s = stats();
  CHECK(s.granted == 23);
  CHECK(s.queued == 0);
}

TEST_CASE_METHOD(fixture, "all tenants together get at most the app's rate",
                 "[actors][governor]") {
  start(10, 10);
  for (uint64_t t = 1; t <= 5; ++t)
    ask(t, 10);
  // The first tenant asked while the capacity was free.
  CHECK(granted_to(1) == 10);
  CHECK(grants->size() == 10);
  advance(1s);
  CHECK(grants->size() == 20);
  // The next second is shared out in turn among the four still waiting.
  for (uint64_t t = 2; t <= 5; ++t) {
    CHECK(granted_to(t) >= 2);
    CHECK(granted_to(t) <= 3);
  }
  advance(3s);
  CHECK(grants->size() == 50);
  CHECK(busiest() == 10);
}

TEST_CASE_METHOD(fixture,
                 "a tenant with 10,000 waiting does not hold up another's "
                 "single request",
                 "[actors][governor]") {
  // One permit a second, so the order of permits is their time.
  start(1, 1);
  ask(1, 10'000);
  CHECK(grants->size() == 1);
  CHECK(stats().queued == 9'999);
  ask(2, 1);
  CHECK(granted_to(2) == 0); // this second's permit is used up
  advance(3s);
  REQUIRE(granted_to(2) == 1);
  auto small = std::find_if(grants->begin(), grants->end(),
                            [](const grant& g) { return g.tenant == 2; });
  // One slot of the big tenant (the one already in turn) went before it.
  CHECK(small->at_ms <= 2'000);
  CHECK(std::count_if(grants->begin(), grants->end(),
                      [&](const grant& g) {
                        return g.tenant == 1 && g.at_ms < small->at_ms;
                      })
        <= 2);
  CHECK(stats().queued == 9'997);
}

TEST_CASE_METHOD(fixture,
                 "requests of a requester that died use no capacity and "
                 "leave no trace",
                 "[actors][governor]") {
  start(10, 10);
  auto doomed = ask(1, 100);
  CHECK(grants->size() == 10);
  auto s = stats();
  CHECK(s.queued == 90);
  CHECK(s.requesters == 1);
  caf::anon_send_exit(doomed, caf::exit_reason::kill);
  sched.run();
  s = stats();
  CHECK(s.queued == 0);
  CHECK(s.tenants_waiting == 0);
  CHECK(s.requesters == 0);
  // The next second's capacity goes to a live requester in full.
  ask(2, 10);
  advance(1s);
  CHECK(granted_to(2) == 10);
  advance(3s);
  CHECK(stats().granted == 20);
}

TEST_CASE_METHOD(fixture, "a request nobody waits for any more takes no permit",
                 "[actors][governor]") {
  start(1, 1);
  ask(1, 1);
  CHECK(granted_to(1) == 1);
  // Its asker gives up after half a second; the next second's permit goes
  // to the request behind it.
  ask(2, 1, 500);
  ask(3, 1);
  advance(1s);
  CHECK(granted_to(2) == 0);
  CHECK(granted_to(0) == 1); // answered with an error
  REQUIRE(granted_to(3) == 1);
  CHECK(grants->back().at_ms == 1'000);
  auto s = stats();
  CHECK(s.queued == 0);
  CHECK(s.requesters == 0);
  CHECK(s.granted == 2);
}

TEST_CASE_METHOD(fixture, "tenants that stopped asking are forgotten",
                 "[actors][governor]") {
  start(1000, 10);
  for (uint64_t t = 1; t <= 100; ++t)
    ask(t, 1);
  CHECK(grants->size() == 100);
  CHECK(stats().tenants_tracked == 100);
  advance(2s);
  ask(101, 1);
  CHECK(stats().tenants_tracked == 1);
}

TEST_CASE_METHOD(fixture,
                 "a permit is taken at the gate only while nobody waits and "
                 "the caps admit it",
                 "[actors][governor]") {
  start(10, 4);
  // Nobody waits: the gate gives the tenant its 4 of this second, then no
  // more, and counts them in the same windows as the actor.
  for (int i = 0; i < 4; ++i)
    CHECK(gate->try_take(1));
  CHECK_FALSE(gate->try_take(1));
  CHECK(gate->try_take(2));
  ask(1, 2); // waits: tenant 1 is at its cap
  CHECK(granted_to(1) == 0);
  // A request waits in the actor's queue: the gate gives nothing, not even
  // to a tenant with room, so the queue is never overtaken.
  CHECK_FALSE(gate->try_take(3));
  advance(1s);
  CHECK(granted_to(1) == 2);
  CHECK(gate->try_take(3));
  // The app's cap (10 in any second) holds for the gate and the actor
  // together: this second has 3 of them (the actor's 2 and the gate's 1).
  int taken = 0;
  for (int i = 0; i < 10; ++i)
    taken += gate->try_take(static_cast<uint64_t>(10 + i)) ? 1 : 0;
  CHECK(taken == 7);
  auto s = stats();
  CHECK(s.queued == 0);
  CHECK(s.granted == 4 + 1 + 2 + 1 + 7);
}

TEST_CASE_METHOD(fixture,
                 "permits taken at the gate count against the caps "
                 "the actor grants from",
                 "[actors][governor]") {
  start(100, 5);
  for (int i = 0; i < 3; ++i)
    REQUIRE(gate->try_take(7));
  ask(7, 5);
  // Two left in this second for tenant 7, the other three a second later.
  CHECK(granted_to(7) == 2);
  advance(1s);
  CHECK(granted_to(7) == 5);
}
