// The calendar actor: the sync state of one user's CRM calendar.
//
// Loads its record from the sync family when activated (no record means
// sync was never enabled: state "disabled") and answers with its status.
// The two-way sync state machine (R13-R21) attaches here.
#include "actors/entities.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/sync_record.hpp"

namespace crmsync::actors {

struct calendar_state {
  static inline const char* name = "calendar";
  std::shared_ptr<const actor_env> env;
  calendar_status status;
};

calendar_actor::behavior_type
calendar(calendar_actor::stateful_pointer<calendar_state> self, tenant_id org,
         user_id user, std::shared_ptr<const actor_env> env) {
  auto& st = self->state;
  st.env = std::move(env);
  st.status.org = org;
  st.status.user = user;
  load_sync_record(self, *st.env, entity_kind::calendar, st.status);
  using namespace crmsync::atom;
  return {
      [=](status_request&) -> calendar_status { return self->state.status; },
      [=](passivate_atom) -> bool {
        self->quit();
        return true;
      },
  };
}

calendar_actor spawn_calendar(caf::actor_system& sys, tenant_id org,
                              user_id user,
                              std::shared_ptr<const actor_env> env) {
  return sys.spawn(calendar, org, user, std::move(env));
}

caf::actor spawn_entity(caf::actor_system& sys, const entity_key& key,
                        std::shared_ptr<const actor_env> env,
                        caf::actor directory) {
  switch (key.kind) {
    case entity_kind::tenant:
      return caf::actor_cast<caf::actor>(
          spawn_tenant(sys, key.tenant, std::move(env), std::move(directory)));
    case entity_kind::mailbox:
      return caf::actor_cast<caf::actor>(
          spawn_mailbox(sys, key.tenant, key.user, std::move(env)));
    default:
      return caf::actor_cast<caf::actor>(
          spawn_calendar(sys, key.tenant, key.user, std::move(env)));
  }
}

} // namespace crmsync::actors
