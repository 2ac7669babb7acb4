// The calendar actor: the sync state of one user's CRM calendar, as the
// sync engine (sync/engine.hpp) keeps it in the sync family.
//
// The engine runs the sync on its own threads (every step is a blocking
// Graph call) and is the only writer of the record; this actor reads it
// afresh for every status request (no record: "disabled"), with the depth
// of the user's sync outbox and inbox.
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
      [=](status_request&) -> calendar_status {
        auto& st = self->state;
        load_sync_record(self, *st.env, entity_kind::calendar, st.status);
        auto prefix = storage::keys::of_user(st.status.org, st.status.user);
        auto end = storage::keys::prefix_end(prefix);
        auto count = [&](storage::column cf) {
          uint64_t n = 0;
          st.env->db->scan(cf, prefix, end,
                           [&n](std::string_view, std::string_view) {
                             ++n;
                             return true;
                           });
          return n;
        };
        st.status.outbox = count(storage::column::sync_outbox);
        st.status.inbox = count(storage::column::inbox);
        return st.status;
      },
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
