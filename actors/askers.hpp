// A few long-lived actors that send requests for code outside the actor
// system (the HTTP threads answering REST calls), instead of a short-lived
// actor spawned per call.
//
// A spawned actor per REST call cost, besides its allocation and launch,
// two hand-offs to CAF 0.17's clock thread: the request's timeout when it
// is sent and the actor's timeouts cancelled when it ends (each wakes that
// thread; perf probes on the steady-state benchmark: ~2 launches and ~4
// clock events per synced change came from them). An asker sends its
// requests without a CAF timeout to actors of this node and keeps their
// deadlines itself (ask_deadlines.hpp: one delayed message for the
// earliest); a request to another node's actor keeps CAF's timeout (a
// lost connection must not leave its handler waiting for ever).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

#include "actors/ask_deadlines.hpp"

namespace crmsync::actors {

class askers {
public:
  /// What runs inside an asker: the actor and its deadlines.
  using job = std::function<void(caf::event_based_actor*, ask_deadlines&)>;

  /// Spawns `n` askers (at least one) in `sys`.
  askers(caf::actor_system& sys, size_t n);
  /// Ends the askers; requests still waiting get no answer.
  ~askers();
  askers(const askers&) = delete;
  askers& operator=(const askers&) = delete;

  /// Runs `fn` in one of the askers, in turn; callable from any thread.
  void run(job fn);

  /// Sends `msg` to `dest` from an asker; `ok` gets the answer, `bad` the
  /// error (caf::sec::request_timeout after `timeout`). Both run in the
  /// asker, exactly one of them once.
  template <class Reply, class Ok, class Bad>
  void ask(caf::actor dest, caf::timespan timeout, caf::message msg, Ok ok,
           Bad bad) {
    run([dest = std::move(dest), timeout, msg = std::move(msg),
         ok = std::move(ok), bad = std::move(bad)](
            caf::event_based_actor* self, ask_deadlines& deadlines) mutable {
      if (!dest) {
        caf::error err = caf::sec::invalid_argument;
        return bad(err);
      }
      if (dest->node() != self->node()) {
        self->request(dest, timeout, std::move(msg))
            .then([ok](Reply& x) mutable { ok(x); },
                  [bad](caf::error& err) mutable { bad(err); });
        return;
      }
      auto id = deadlines.add(self, timeout, [bad]() mutable {
        caf::error err = caf::sec::request_timeout;
        bad(err);
      });
      auto* d = &deadlines;
      self->request(dest, caf::infinite, std::move(msg))
          .then(
              [d, id, ok](Reply& x) mutable {
                if (d->answered(id))
                  ok(x);
              },
              [d, id, bad](caf::error& err) mutable {
                if (d->answered(id))
                  bad(err);
              });
    });
  }

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace crmsync::actors
