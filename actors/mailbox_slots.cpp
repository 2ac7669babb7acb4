#include "actors/mailbox_slots.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>

#include "protocol/type_ids.hpp"

namespace crmsync::actors {

void request_mailbox_slot(caf::event_based_actor* self,
                          const caf::actor& directory,
                          const entity_key& mailbox, bool mail, uint32_t weight,
                          std::chrono::milliseconds wait, int64_t now_ms,
                          std::function<void(slot_release)> granted,
                          std::function<void(bool busy)> refused) {
  self->request(directory, wait + std::chrono::seconds(2), atom::route_atom_v,
                mailbox,
                caf::make_message(
                    mailbox_slot_request{mail, now_ms + wait.count(), weight}))
      .then(
          [self, directory, mailbox, granted](mailbox_slot& slot) {
            // The answer comes from the mailbox actor itself: the ticket
            // goes straight back to it (it stays alive while a slot is
            // held), else through the directory.
            auto holder = caf::actor_cast<caf::actor>(self->current_sender());
            auto release = mailbox_slot_release{slot.ticket};
            granted([holder, directory, mailbox, release] {
              if (holder)
                caf::anon_send(holder, release);
              else
                caf::anon_send(directory, atom::route_atom_v, mailbox,
                               caf::make_message(release));
            });
          },
          [refused](caf::error& err) {
            refused(err == caf::sec::request_timeout);
          });
}

} // namespace crmsync::actors
