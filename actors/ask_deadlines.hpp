// The deadlines of an actor's requests, kept by the actor with one timer
// instead of CAF's request timeout per request (t13-cpu2).
//
// CAF 0.17 hands every request timeout to its clock thread twice: when
// the request is sent and again when the answer cancels it, and each
// hand-off wakes that thread. A calendar asks the governor and the
// mailbox before each Graph call, so that was four clock wake-ups per
// call. An actor that sends its requests without a CAF timeout and
// registers them here arms at most one delayed message (`sweep_atom` with
// a generation) for the earliest deadline; a request still unanswered at
// its deadline gets its `expired` call then, exactly as CAF's timeout
// would have called the error handler. The answer's handler asks
// `answered(id)` first: false means the request already expired (the
// answer comes too late and is not used).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/event_based_actor.hpp>

#include "protocol/type_ids.hpp"

namespace crmsync::actors {

class ask_deadlines {
public:
  using time_point = caf::actor_clock::time_point;

  /// Registers a request of `self` that gives up after `timeout`; returns
  /// its id for answered().
  uint64_t add(caf::event_based_actor* self, caf::timespan timeout,
               std::function<void()> expired) {
    auto id = ++last_id_;
    auto at = self->clock().now() + timeout;
    pending_.emplace(id, entry{at, std::move(expired)});
    if (!armed_ || at < armed_at_)
      arm(self, at);
    return id;
  }

  /// The answer to request `id` came: whether it was still awaited (it no
  /// longer is).
  bool answered(uint64_t id) {
    return pending_.erase(id) > 0;
  }

  /// The `sweep_atom` message of generation `gen` arrived: the requests
  /// past their deadline expire, and the timer is armed for the next.
  void sweep(caf::event_based_actor* self, uint64_t gen) {
    if (gen != generation_)
      return; // an older timer, replaced by an earlier one
    armed_ = false;
    auto now = self->clock().now();
    std::vector<std::function<void()>> due;
    bool any_left = false;
    time_point next{};
    for (auto i = pending_.begin(); i != pending_.end();) {
      if (i->second.at <= now) {
        due.push_back(std::move(i->second.expired));
        i = pending_.erase(i);
        continue;
      }
      if (!any_left || i->second.at < next)
        next = i->second.at;
      any_left = true;
      ++i;
    }
    if (any_left)
      arm(self, next);
    for (auto& f : due)
      f();
  }

  size_t size() const {
    return pending_.size();
  }

private:
  struct entry {
    time_point at;
    std::function<void()> expired;
  };

  void arm(caf::event_based_actor* self, time_point at) {
    armed_ = true;
    armed_at_ = at;
    auto now = self->clock().now();
    self->delayed_send(self, at > now ? at - now : caf::timespan{0},
                       atom::sweep_atom_v, ++generation_);
  }

  std::map<uint64_t, entry> pending_;
  uint64_t last_id_ = 0;
  uint64_t generation_ = 0;
  bool armed_ = false;
  time_point armed_at_{};
};

} // namespace crmsync::actors
