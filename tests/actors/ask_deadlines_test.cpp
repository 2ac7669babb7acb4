// An actor's request deadlines kept with one timer (actors/ask_deadlines.hpp)
// on CAF's test coordinator (virtual time): a request nobody answers
// expires at its deadline, not before and once; an answered one never
// does; an answer after the deadline is not used; and many requests in
// flight cost one timer, not one each.
#include "actors/ask_deadlines.hpp"

#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/stateful_actor.hpp>
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

struct asker_state {
  static inline const char* name = "asker";
  actors::ask_deadlines asks;
};

/// Asks `server` (an int) each time it gets `run_atom`: "answer <n>" or
/// "expired <n>" goes to `log`.
caf::behavior asker(caf::stateful_actor<asker_state>* self, caf::actor server,
                    std::shared_ptr<std::vector<std::string>> log) {
  auto n = std::make_shared<int>(0);
  return {
      [=](atom::run_atom) {
        auto i = ++*n;
        auto* asks = &self->state.asks;
        auto id = asks->add(self, std::chrono::seconds(10), [=] {
          log->push_back("expired " + std::to_string(i));
        });
        self->request(server, caf::infinite, i)
            .then(
                [=](int) {
                  if (asks->answered(id))
                    log->push_back("answer " + std::to_string(i));
                },
                [=](caf::error&) {
                  if (asks->answered(id))
                    log->push_back("error " + std::to_string(i));
                });
      },
      [=](atom::sweep_atom, uint64_t gen) {
        self->state.asks.sweep(self, gen);
      },
  };
}

/// Answers odd requests at once and keeps even ones until `wake_atom`.
struct server_state {
  static inline const char* name = "server";
  std::vector<std::pair<int, caf::response_promise>> held;
};

caf::behavior server(caf::stateful_actor<server_state>* self) {
  return {
      [=](int i) -> caf::result<int> {
        if (i % 2 == 1)
          return i;
        auto rp = self->make_response_promise();
        self->state.held.emplace_back(i, rp);
        return rp;
      },
      [=](atom::wake_atom) {
        for (auto& [i, rp] : self->state.held)
          rp.deliver(i);
        self->state.held.clear();
      },
  };
}

struct fixture {
  test_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched
      = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  std::shared_ptr<std::vector<std::string>> log
      = std::make_shared<std::vector<std::string>>();
  caf::actor srv = sys.spawn(server);
  caf::actor client = sys.spawn(asker, srv, log);

  ~fixture() {
    caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(srv, caf::exit_reason::user_shutdown);
    sched.run();
  }

  size_t timers() {
    return sched.clock().schedule().size();
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "an unanswered request expires once, at its "
                          "deadline, and answered ones never do") {
  caf::anon_send(client, atom::run_atom_v); // 1: answered at once
  caf::anon_send(client, atom::run_atom_v); // 2: held
  sched.run();
  CHECK(*log == std::vector<std::string>{"answer 1"});
  // Two requests, one timer (CAF's request timeouts would be two).
  CHECK(timers() == 1);
  sched.clock().advance_time(9s);
  sched.run();
  CHECK(*log == std::vector<std::string>{"answer 1"});
  sched.clock().advance_time(1s);
  sched.run();
  CHECK(*log == std::vector<std::string>{"answer 1", "expired 2"});
  CHECK(timers() == 0); // nothing left to wait for: no timer
  // The late answer is not used.
  caf::anon_send(srv, atom::wake_atom_v);
  sched.run();
  CHECK(*log == std::vector<std::string>{"answer 1", "expired 2"});
}

TEST_CASE_METHOD(fixture, "requests in flight share one timer, which moves "
                          "on to the next deadline") {
  caf::anon_send(client, atom::run_atom_v); // 1
  caf::anon_send(client, atom::run_atom_v); // 2: held
  sched.run();
  sched.clock().advance_time(5s);
  caf::anon_send(client, atom::run_atom_v); // 3
  caf::anon_send(client, atom::run_atom_v); // 4: held, 5 s after 2
  sched.run();
  CHECK(timers() == 1);
  sched.clock().advance_time(5s);
  sched.run();
  CHECK(*log == std::vector<std::string>{"answer 1", "answer 3", "expired 2"});
  CHECK(timers() == 1); // armed again, for request 4
  sched.clock().advance_time(4s);
  sched.run();
  CHECK(log->size() == 3);
  sched.clock().advance_time(1s);
  sched.run();
  CHECK(log->back() == "expired 4");
  CHECK(timers() == 0);
}
