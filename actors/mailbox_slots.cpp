#include "actors/mailbox_slots.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>
#include <caf/sec.hpp>

#include "actors/send_within.hpp"
#include "protocol/type_ids.hpp"

namespace crmsync::actors {

void request_mailbox_slot(caf::event_based_actor* self,
                          const caf::actor& directory,
                          const entity_key& mailbox, bool mail, uint32_t weight,
                          std::chrono::milliseconds wait, int64_t now_ms,
                          std::function<void(slot_release)> granted,
                          std::function<void(bool busy)> refused,
                          ask_deadlines* deadlines, caf::actor* known) {
  auto timeout = wait + std::chrono::seconds(2);
  // The release of a granted slot. The answer comes from the mailbox
  // actor itself: the ticket goes straight back to it (it stays alive
  // while a slot is held), else through the directory.
  auto release_of = [self, directory, mailbox](const mailbox_slot& slot) {
    auto holder = caf::actor_cast<caf::actor>(self->current_sender());
    auto release = mailbox_slot_release{slot.ticket};
    return slot_release{
        [holder, directory, mailbox, release](caf::scheduled_actor* in) {
          if (holder)
            send_within(in, holder, release);
          else
            send_within(in, directory, atom::route_atom_v, mailbox,
                        caf::make_message(release));
        }};
  };
  auto msg = caf::make_message(
      mailbox_slot_request{mail, now_ms + wait.count(), weight});
  if (!deadlines) {
    self->request(directory, timeout, atom::route_atom_v, mailbox, msg)
        .then([release_of,
               granted](mailbox_slot& slot) { granted(release_of(slot)); },
              [refused](caf::error& err) {
                refused(err == caf::sec::request_timeout);
              });
    return;
  }
  // The deadline kept by the requester (ask_deadlines.hpp): expiring
  // counts as CAF's request timeout would.
  auto id = deadlines->add(self, timeout, [refused] { refused(true); });
  auto on_slot
      = [self, deadlines, id, release_of, granted, known](mailbox_slot& slot) {
          if (known)
            *known = caf::actor_cast<caf::actor>(self->current_sender());
          auto release = release_of(slot);
          if (!deadlines->answered(id))
            return release(); // granted after its requester gave up
          granted(std::move(release));
        };
  auto through_directory = [self, directory, mailbox, msg, deadlines, id,
                            on_slot, refused] {
    self->request(directory, caf::infinite, atom::route_atom_v, mailbox, msg)
        .then(on_slot, [deadlines, id, refused](caf::error& err) {
          if (deadlines->answered(id))
            refused(err == caf::sec::request_timeout);
        });
  };
  if (!known || !*known)
    return through_directory();
  // The mailbox actor that answered last, asked directly (one hop less);
  // passivated since, it is gone and the request goes the directory's way.
  self->request(*known, caf::infinite, msg)
      .then(on_slot, [known, through_directory](caf::error&) {
        *known = caf::actor{};
        through_directory();
      });
}

} // namespace crmsync::actors
