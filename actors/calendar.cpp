// Calendar actors without Office 365: the sync state of one user's CRM
// calendar as stored, for status requests.
//
// A node with Office 365 configured spawns the syncing calendar actor
// instead (sync/calendar_sync.hpp, through actor_env::spawn_calendar);
// this one reads the record afresh for every status request (no record:
// "disabled") and ignores what would make a calendar sync.
#include "actors/entities.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace crmsync::actors {

bool read_calendar_status(const storage::db& db, tenant_id org, user_id user,
                          calendar_status& out) {
  namespace keys = storage::keys;
  out = calendar_status{};
  out.org = org;
  out.user = user;
  std::string value;
  bool found = false;
  if (db.get(storage::column::sync,
             keys::sync_state(org, user, entity_kind::calendar), value, found)
      || (found && !storage::codec::decode(value, out)))
    return false;
  auto prefix = keys::of_user(org, user);
  out.outbox = db.count_prefix(storage::column::sync_outbox, prefix);
  out.inbox = db.count_prefix(storage::column::inbox, prefix);
  return true;
}

struct calendar_state {
  static inline const char* name = "calendar";
  std::shared_ptr<const actor_env> env;
  tenant_id org;
  user_id user;
};

calendar_actor::behavior_type
calendar(calendar_actor::stateful_pointer<calendar_state> self, tenant_id org,
         user_id user, std::shared_ptr<const actor_env> env) {
  auto& st = self->state;
  st.env = std::move(env);
  st.org = org;
  st.user = user;
  using namespace crmsync::atom;
  return {
      [=](status_request&) -> caf::result<calendar_status> {
        auto& st = self->state;
        calendar_status out;
        if (!read_calendar_status(*st.env->db, st.org, st.user, out))
          return make_crm_error(crm_errc::storage_failure, "storage_failure",
                                "cannot read the calendar sync status");
        return out;
      },
      [=](stats_atom) -> uint64_t {
        // Asked from inside the actor: the queue behind this message.
        return self->mailbox().size();
      },
      [=](passivate_atom) -> bool {
        self->quit();
        return true;
      },
      // Nothing syncs on a node without Office 365.
      [=](wake_atom) {},
      [=](notify_atom, int64_t) {},
      [=](resync_atom) {},
      [=](const reminder_due&) {},
  };
}

calendar_actor spawn_calendar(caf::actor_system& sys, tenant_id org,
                              user_id user,
                              std::shared_ptr<const actor_env> env) {
  return sys.spawn(calendar, org, user, std::move(env));
}

caf::actor spawn_entity(caf::actor_system& sys, const entity_key& key,
                        std::shared_ptr<const actor_env> env,
                        caf::actor directory,
                        std::chrono::milliseconds idle_after) {
  switch (key.kind) {
    case entity_kind::tenant:
      return caf::actor_cast<caf::actor>(
          spawn_tenant(sys, key.tenant, std::move(env), std::move(directory)));
    case entity_kind::mailbox:
      return caf::actor_cast<caf::actor>(
          spawn_mailbox(sys, key.tenant, key.user, std::move(env),
                        std::move(directory), idle_after));
    default:
      if (env->spawn_calendar)
        if (auto syncing = env->spawn_calendar(sys, key, idle_after))
          return syncing;
      return caf::actor_cast<caf::actor>(
          spawn_calendar(sys, key.tenant, key.user, std::move(env)));
  }
}

} // namespace crmsync::actors
