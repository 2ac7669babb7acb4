// One pending idle check per actor: when an actor falls idle it wants to
// ask to be passivated after `after`, but arming a delayed message each
// time (after every run, every answered Graph call) woke CAF 0.17's clock
// thread each time. An idle_check keeps one delayed message pending and
// moves the due time forward instead; when the message arrives early (the
// actor was used since), it waits again for the rest. The calendar and the
// mailbox actors use it.
#pragma once

#include <utility>

#include <caf/actor_clock.hpp>

namespace crmsync::actors {

class idle_check {
public:
  /// The actor fell idle now: due `after` from now; sends `msg...` to
  /// itself after `after` unless a check is pending already.
  template <class Self, class... Ts>
  void start(Self* self, caf::timespan after, Ts&&... msg) {
    due_ = self->clock().now() + after;
    if (armed_)
      return; // the pending check waits on until then
    armed_ = true;
    self->delayed_send(self, after, std::forward<Ts>(msg)...);
  }

  /// The check's message arrived. True when the actor has been idle since
  /// the due time (the caller asks to be passivated if it is still idle);
  /// false when it was used since: the check waits again for the rest.
  template <class Self, class... Ts>
  bool fired(Self* self, Ts&&... msg) {
    armed_ = false;
    auto now = self->clock().now();
    if (now >= due_)
      return true;
    armed_ = true;
    self->delayed_send(self, due_ - now, std::forward<Ts>(msg)...);
    return false;
  }

  /// The check's message arrived while the actor is busy: nothing pends
  /// (the next start() arms one).
  void dropped() {
    armed_ = false;
  }

private:
  bool armed_ = false;
  caf::actor_clock::time_point due_{};
};

} // namespace crmsync::actors
