// The tenant actor's message handlers, by concern: each group is defined in
// the file its comment names, and tenant.cpp assembles them into the
// actor's behaviour (protocol/interfaces.hpp, tenant_actor).
//
// Private to actors/tenant/. A handler runs inside the actor: it validates,
// writes every effect of the command in one WriteBatch and only then
// answers, so an acknowledged change is durable.
#pragma once

#include <cstdint>

#include <caf/make_message.hpp>
#include <caf/result.hpp>

#include "actors/tenant/state.hpp"
#include "protocol/messages.hpp"

namespace crmsync::actors::tenant_impl {

// -- org.cpp

caf::result<org_created> handle(self_ptr self, create_org& cmd);
caf::result<org_record> handle(self_ptr self, get_org& cmd);
caf::result<org_record> handle(self_ptr self, update_org& cmd);
caf::result<org_record> handle(self_ptr self, tenant_summary_request&);

// -- users.cpp

caf::result<user_record> handle(self_ptr self, create_user& cmd);
caf::result<user_record> handle(self_ptr self, get_user& cmd);
caf::result<user_record> handle(self_ptr self, update_user& cmd);
caf::result<user_record> handle(self_ptr self, authenticate& cmd);
caf::result<user_page> handle(self_ptr self, list_users& cmd);

// -- events.cpp

caf::result<event_record> handle(self_ptr self, create_event& cmd);
caf::result<event_record> handle(self_ptr self, get_event& cmd);
caf::result<event_record> handle(self_ptr self, update_event& cmd);
caf::result<event_deleted> handle(self_ptr self, delete_event& cmd);
caf::result<event_page> handle(self_ptr self, list_events& cmd);
caf::result<events_imported> handle(self_ptr self, import_events& cmd);
caf::result<events_updated> handle(self_ptr self, mass_update& cmd);

// -- invites.cpp

caf::result<invite_list> handle(self_ptr self, invite_users& cmd);
caf::result<invite_list> handle(self_ptr self, list_invites& cmd);
caf::result<invite_list> handle(self_ptr self, list_my_invites& cmd);
caf::result<invite_accepted> handle(self_ptr self, accept_invite& cmd);

// -- joins.cpp

caf::result<join_request_record> handle(self_ptr self, request_join& cmd);
caf::result<join_request_record> handle(self_ptr self, get_join_request& cmd);
caf::result<join_request_list> handle(self_ptr self, list_join_requests& cmd);
caf::result<join_approved> handle(self_ptr self, approve_join& cmd);

// -- office365.cpp

caf::result<user_record> handle(self_ptr self, link_office365& cmd);
caf::result<bool> handle(self_ptr self, revoke_page_token& cmd);
caf::result<bool> handle(self_ptr self, open_page_session& cmd);

// -- sync.cpp

caf::result<calendar_status> handle(self_ptr self, set_calendar_sync& cmd);
caf::result<event_record> handle(self_ptr self, apply_office365& cmd);

// -- audit.cpp

caf::result<audit_list> handle(self_ptr self, list_audit& cmd);
caf::result<bool> handle(self_ptr self, audit_note& note);

// -- org_data.cpp (t14-data)

caf::result<org_record> handle(self_ptr self, disconnect_office365& cmd);
caf::result<org_record> handle(self_ptr self, close_org& cmd);

// -- deletion.cpp (t14-life3)

caf::result<user_deleted> handle(self_ptr self, delete_user& cmd);

// -- tokens.cpp (t14-life3)

caf::result<token_list> handle(self_ptr self, list_tokens& cmd);
caf::result<token_info> handle(self_ptr self, create_token& cmd);
caf::result<token_info> handle(self_ptr self, revoke_token& cmd);

// -- invites.cpp, joins.cpp (t14-life3)

caf::result<invite_record> handle(self_ptr self, revoke_invite& cmd);
caf::result<join_request_record> handle(self_ptr self, reject_join& cmd);

// -- offboarding.cpp, users.cpp (t14-life3)

caf::result<user_record> handle(self_ptr self, offboard_user& cmd);
caf::result<user_record> handle(self_ptr self, set_password& cmd);

} // namespace crmsync::actors::tenant_impl
