// The tenant actor: one CRM organization, its users and their events.
//
// Single writer of its tenant's keys in the orgs, users, events and
// event_index families. Every command validates, builds one WriteBatch with
// all of its effects (record, index entries, counters) and writes it before
// answering, so an acknowledged change is durable and a crash never leaves
// half of one. Users are cached after first use; events are read on demand.
//
// This file assembles the behaviour; each message is handled in the file of
// its concern (handlers.hpp lists them), on the state of state.hpp.
#include "actors/entities.hpp"

#include <caf/actor_system.hpp>

#include "actors/acked.hpp"
#include "actors/tenant/handlers.hpp"
#include "common/log.hpp"

namespace crmsync::actors {

namespace {

using namespace tenant_impl;

void load(self_ptr self) {
  auto& st = self->state;
  std::string value;
  bool found = false;
  if (auto err
      = st.env->db->get(column::orgs, keys::org(st.id), value, found)) {
    // Without its record the tenant cannot serve; stop and let the
    // directory reactivate it on the next message.
    log::error("tenant " + st.id.str()
               + ": cannot load: " + self->system().render(err));
    self->quit(err);
    return;
  }
  if (found) {
    if (!codec::decode(value, st.org)) {
      log::error("tenant " + st.id.str() + ": corrupt organization record");
      self->quit(make_crm_error(crm_errc::storage_failure, "storage_failure",
                                "corrupt organization record"));
      return;
    }
    st.exists = true;
  }
  if (auto err
      = st.env->db->get(column::orgs, keys::org_closed(st.id), value, found)) {
    self->quit(err);
    return;
  }
  if (found) {
    st.exists = false;
    st.closed = true;
  }
}

} // namespace

tenant_actor::behavior_type
tenant(tenant_actor::stateful_pointer<tenant_state> self, tenant_id id,
       std::shared_ptr<const actor_env> env, caf::actor directory) {
  self->state.id = id;
  self->state.env = std::move(env);
  self->state.directory = std::move(directory);
  load(self);
  using namespace crmsync::atom;
  return {
      [=](create_org& msg) -> caf::result<org_created> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](get_org& msg) -> caf::result<org_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](update_org& msg) -> caf::result<org_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](tenant_summary_request& msg) -> caf::result<org_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](create_user& msg) -> caf::result<user_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](get_user& msg) -> caf::result<user_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](update_user& msg) -> caf::result<user_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](authenticate& msg) -> caf::result<user_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](list_users& msg) -> caf::result<user_page> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](create_event& msg) -> caf::result<event_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](get_event& msg) -> caf::result<event_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](update_event& msg) -> caf::result<event_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](delete_event& msg) -> caf::result<event_deleted> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](list_events& msg) -> caf::result<event_page> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](import_events& msg) -> caf::result<events_imported> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](mass_update& msg) -> caf::result<events_updated> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](link_office365& msg) -> caf::result<user_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](invite_users& msg) -> caf::result<invite_list> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](list_invites& msg) -> caf::result<invite_list> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](list_my_invites& msg) -> caf::result<invite_list> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](accept_invite& msg) -> caf::result<invite_accepted> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](request_join& msg) -> caf::result<join_request_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](get_join_request& msg) -> caf::result<join_request_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](list_join_requests& msg) -> caf::result<join_request_list> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](approve_join& msg) -> caf::result<join_approved> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](list_audit& msg) -> caf::result<audit_list> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](audit_note& msg) -> caf::result<bool> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](set_calendar_sync& msg) -> caf::result<calendar_status> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](apply_office365& msg) -> caf::result<event_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](stats_atom) -> uint64_t {
        // Asked from inside the actor: the queue behind this message.
        return self->mailbox().size();
      },
      [=](passivate_atom) -> bool {
        self->quit();
        return true;
      },
      // t14-data: disconnect Office 365, delete an organization
      [=](disconnect_office365& msg) -> caf::result<org_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](close_org& msg) -> caf::result<org_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      // t14-life3: the rest of the user lifecycle
      [=](delete_user& msg) -> caf::result<user_deleted> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](list_tokens& msg) -> caf::result<token_list> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](create_token& msg) -> caf::result<token_info> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](revoke_token& msg) -> caf::result<token_info> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](revoke_invite& msg) -> caf::result<invite_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](reject_join& msg) -> caf::result<join_request_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](offboard_user& msg) -> caf::result<user_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      [=](set_password& msg) -> caf::result<user_record> {
        return acked(self, [&] { return handle(self, msg); });
      },
      // t14-cookie
      [=](revoke_page_token& msg) -> caf::result<bool> {
        return acked(self, [&] { return handle(self, msg); });
      },
      // t15-sessions
      [=](open_page_session& msg) -> caf::result<bool> {
        return acked(self, [&] { return handle(self, msg); });
      },
  };
}

tenant_actor spawn_tenant(caf::actor_system& sys, tenant_id id,
                          std::shared_ptr<const actor_env> env,
                          caf::actor directory) {
  return sys.spawn(tenant, id, std::move(env), std::move(directory));
}

} // namespace crmsync::actors
