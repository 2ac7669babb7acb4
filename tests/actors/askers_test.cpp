// The askers (actors/askers.hpp) that send the HTTP threads' requests: an
// answer reaches `ok` once, a request nobody answers reaches `bad` with
// request_timeout at its deadline (kept by the asker, not CAF's timeout),
// and an answer after the deadline is not used.
#include "actors/askers.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/response_promise.hpp>
#include <caf/sec.hpp>
#include <caf/stateful_actor.hpp>
#include <catch2/catch.hpp>

#include "protocol/type_ids.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync;
using namespace std::chrono_literals;

namespace {

struct config : caf::actor_system_config {
  config() {
    register_types(*this);
  }
};

/// What the callbacks saw (they run on the askers' threads).
struct seen {
  std::mutex mtx;
  std::vector<std::string> answers;
  std::vector<caf::error> errors;

  size_t total() {
    std::lock_guard<std::mutex> g{mtx};
    return answers.size() + errors.size();
  }
};

struct echo_state {
  std::vector<caf::response_promise> held;
};

/// Answers "echo:X" at once; "never" is held and never answered; "late"
/// is answered after 600 ms.
caf::behavior echo(caf::stateful_actor<echo_state>* self) {
  return {
      [=](const std::string& x) -> caf::result<std::string> {
        if (x != "never" && x != "late")
          return "echo:" + x;
        auto rp = self->make_response_promise();
        self->state.held.push_back(rp);
        if (x == "late")
          self->delayed_send(self, 600ms, int32_t{0});
        return caf::delegated<std::string>{};
      },
      [=](int32_t) {
        for (auto& rp : self->state.held)
          if (rp.pending())
            rp.deliver(std::string{"too late"});
      },
  };
}

} // namespace

TEST_CASE("askers deliver answers, give up at the deadline and drop late "
          "answers",
          "[actors][askers]") {
  config cfg;
  caf::actor_system sys{cfg};
  auto s = std::make_shared<seen>();
  auto target = sys.spawn(echo);
  {
    actors::askers askers{sys, 2};
    auto ask = [&](const std::string& x, caf::timespan timeout) {
      askers.ask<std::string>(
          target, timeout, caf::make_message(x),
          [s](std::string& answer) {
            std::lock_guard<std::mutex> g{s->mtx};
            s->answers.push_back(answer);
          },
          [s](caf::error& err) {
            std::lock_guard<std::mutex> g{s->mtx};
            s->errors.push_back(err);
          });
    };
    for (int i = 0; i < 10; ++i)
      ask("a" + std::to_string(i), 5s);
    ask("never", 200ms);
    ask("late", 200ms);
    REQUIRE(test::eventually([&] { return s->total() == 12; }, 5s, 5ms));
    // The late answer (600 ms) comes after its deadline: not used.
    std::this_thread::sleep_for(800ms);
    std::lock_guard<std::mutex> g{s->mtx};
    CHECK(s->answers.size() == 10);
    for (const auto& a : s->answers)
      CHECK(a.rfind("echo:a", 0) == 0);
    REQUIRE(s->errors.size() == 2);
    for (const auto& e : s->errors)
      CHECK(e == caf::sec::request_timeout);
  }
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
}
