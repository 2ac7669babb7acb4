// Asking a user's mailbox actor for one of its Graph slots (see
// actors/mailbox.cpp), for any actor that calls Graph against a mailbox:
// the calendar sync and the mailer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/ask_deadlines.hpp"

#include "protocol/messages.hpp"

namespace crmsync::actors {

/// Gives a granted slot back, once: `release()` from any thread (a Graph
/// I/O thread, as soon as the answer arrived), or `release.within(self)`
/// from inside the requester's handlers (actors/send_within.hpp: the
/// mailbox actor is scheduled on the running worker; no thread is woken
/// only to take the ticket back).
struct slot_release {
  std::function<void(caf::scheduled_actor*)> give_back;

  void operator()() const {
    give_back(nullptr);
  }

  void within(caf::scheduled_actor* self) const {
    give_back(self);
  }
};

/// Asks the mailbox actor of `mailbox` (routed by `directory`) for a slot
/// of the mail lane (`mail`) or the calendar sync's, for an exchange that
/// Outlook counts as `weight` requests (a $batch: its inner requests; see
/// mailbox_slot_request). `granted` runs in
/// `self` with the release; `refused` runs in `self` when no slot came
/// within `wait` (`busy`: the mailbox was busy all along) or the mailbox
/// could not be reached (`busy` false). `now_ms` is the wall clock the
/// mailbox also reads; it gives up on the request a little before `self`
/// does, so a slot is never granted to a request nobody waits for.
/// With `deadlines` (which must outlive the request: the requester's
/// state), the request carries no CAF timeout and `deadlines` keeps it
/// (ask_deadlines.hpp); a slot granted after it expired goes back at once.
/// With `deadlines`, `known` (the requester's, may be null) remembers the
/// mailbox actor that granted a slot, so the next request goes to it
/// directly instead of through the directory, or through the directory
/// again once that actor is gone (passivated).
void request_mailbox_slot(caf::event_based_actor* self,
                          const caf::actor& directory,
                          const entity_key& mailbox, bool mail, uint32_t weight,
                          std::chrono::milliseconds wait, int64_t now_ms,
                          std::function<void(slot_release)> granted,
                          std::function<void(bool busy)> refused,
                          ask_deadlines* deadlines = nullptr,
                          caf::actor* known = nullptr);

} // namespace crmsync::actors
