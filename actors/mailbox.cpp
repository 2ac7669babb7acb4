// The mailbox actor: one CRM user's Office 365 mailbox link.
//
// Loads its record from the sync family when activated (a user without one
// is simply not linked yet) and answers with its status. The Office 365
// flows (install, invites, sendMail, the Graph budget) attach here.
#include "actors/entities.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "common/log.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

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
  std::string value;
  bool found = false;
  auto key = storage::keys::sync_state(org, user, entity_kind::mailbox);
  if (auto err = st.env->db->get(storage::column::sync, key, value, found)) {
    log::error("mailbox " + user.str() + ": cannot load: "
               + self->system().render(err));
    self->quit(err);
  } else if (found && !storage::codec::decode(value, st.status)) {
    log::error("mailbox " + user.str() + ": corrupt state record");
    self->quit(make_crm_error(crm_errc::storage_failure, "storage_failure",
                              "corrupt mailbox record"));
  }
  using namespace crmsync::atom;
  return {
    [=](status_request&) -> mailbox_status { return self->state.status; },
    [=](passivate_atom) -> bool {
      self->quit();
      return true;
    },
  };
}

mailbox_actor spawn_mailbox(caf::actor_system& sys, tenant_id org,
                            user_id user,
                            std::shared_ptr<const actor_env> env) {
  return sys.spawn(mailbox, org, user, std::move(env));
}

} // namespace crmsync::actors
