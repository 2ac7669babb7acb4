// An anonymous message sent from inside an actor's handler, scheduled the
// way CAF schedules a message between actors.
//
// caf::anon_send passes no execution unit, so CAF 0.17 puts the receiver
// in a worker's queue from outside (round robin) and wakes that worker if
// it sleeps, even when the sender runs on a worker that will be free a
// moment later; self->send names the sender, so a handler's result comes
// back to it as a message. send_within names no sender and passes the
// running worker: a receiver that was idle is queued on this worker, which
// runs it next, and no sleeping thread is woken. Only from inside `self`'s
// handlers; with `self` null (outside any actor) it is caf::anon_send.
#pragma once

#include <utility>

#include <caf/mailbox_element.hpp>
#include <caf/message_id.hpp>
#include <caf/scheduled_actor.hpp>

namespace crmsync::actors {

template <class Handle, class... Ts>
void send_within(caf::scheduled_actor* self, const Handle& dest, Ts&&... xs) {
  if (!dest)
    return;
  dest->enqueue(caf::make_mailbox_element(nullptr, caf::make_message_id(), {},
                                          std::forward<Ts>(xs)...),
                self ? self->context() : nullptr);
}

} // namespace crmsync::actors
