// The mailbox actor: one CRM user's Office 365 mailbox link.
//
// Loads its record from the sync family when activated (a user without one
// is simply not linked yet) and answers with its status. The Office 365
// flows (install, invites, sendMail, the Graph budget) attach here.
#include "actors/entities.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/sync_record.hpp"

namespace crmsync::actors {

struct mailbox_state {
  static inline const char* name = "mailbox";
  std::shared_ptr<const actor_env> env;
  mailbox_status status;
};

mailbox_actor::behavior_type
mailbox(mailbox_actor::stateful_pointer<mailbox_state> self, tenant_id org,
        user_id user, std::shared_ptr<const actor_env> env) {
  auto& st = self->state;
  st.env = std::move(env);
  st.status.org = org;
  st.status.user = user;
  load_sync_record(self, *st.env, entity_kind::mailbox, st.status);
  using namespace crmsync::atom;
  return {
      [=](status_request&) -> mailbox_status { return self->state.status; },
      [=](stats_atom) -> uint64_t {
        // Asked from inside the actor: the queue behind this message.
        return self->mailbox().size();
      },
      [=](passivate_atom) -> bool {
        self->quit();
        return true;
      },
  };
}

mailbox_actor spawn_mailbox(caf::actor_system& sys, tenant_id org, user_id user,
                            std::shared_ptr<const actor_env> env) {
  return sys.spawn(mailbox, org, user, std::move(env));
}

} // namespace crmsync::actors
