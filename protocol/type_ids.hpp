// The project's single CAF type-id block and its atoms.
//
// Every message type crossing actors is listed here exactly once; every
// process calls register_types() on its config before building the actor
// system (a missing registration only fails at run time in CAF 0.17).
#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#include "protocol/cluster.hpp"
#include "protocol/errors.hpp"
#include "protocol/lifecycle.hpp"
#include "protocol/messages.hpp"
#include "protocol/office365.hpp"
#include "protocol/org_data.hpp"
#include "protocol/sync.hpp"
#include "protocol/timers.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(crmsync, caf::first_custom_type_id)

  CAF_ADD_ATOM(crmsync, crmsync::atom, route_atom, "route")
  CAF_ADD_ATOM(crmsync, crmsync::atom, passivate_atom, "passivate")
  CAF_ADD_ATOM(crmsync, crmsync::atom, stats_atom, "stats")
  CAF_ADD_ATOM(crmsync, crmsync::atom, sweep_atom, "sweep")
  CAF_ADD_ATOM(crmsync, crmsync::atom, forward_atom, "forward")
  CAF_ADD_ATOM(crmsync, crmsync::atom, read_atom, "read")
  CAF_ADD_ATOM(crmsync, crmsync::atom, hello_atom, "hello")
  CAF_ADD_ATOM(crmsync, crmsync::atom, rows_atom, "rows")
  CAF_ADD_ATOM(crmsync, crmsync::atom, moved_atom, "moved")
  CAF_ADD_ATOM(crmsync, crmsync::atom, wake_atom, "wake")
  CAF_ADD_ATOM(crmsync, crmsync::atom, notify_atom, "notify")
  CAF_ADD_ATOM(crmsync, crmsync::atom, resync_atom, "resync")
  CAF_ADD_ATOM(crmsync, crmsync::atom, run_atom, "run")
  CAF_ADD_ATOM(crmsync, crmsync::atom, retry_atom, "retry")
  CAF_ADD_ATOM(crmsync, crmsync::atom, idle_atom, "idle")

  CAF_ADD_TYPE_ID(crmsync, (crmsync::tenant_id))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::user_id))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::event_id))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::entity_key))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::caller))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::org_record))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::user_record))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::event_record))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::event_patch))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::new_user))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::create_org))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::org_created))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::get_org))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::update_org))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::create_user))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::get_user))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::authenticate))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::list_users))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::user_page))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::create_event))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::get_event))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::update_event))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::delete_event))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::event_deleted))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::list_events))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::event_page))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::import_events))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::events_imported))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::mass_update))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::events_updated))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::status_request))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::mailbox_status))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::calendar_status))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::tenant_summary_request))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::kind_stats))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::live_actor))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::directory_stats))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::o365_identity))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::invite_record))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::join_request_record))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::audit_entry))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::link_office365))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::invitee))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::invite_users))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::invite_list))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::list_invites))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::list_my_invites))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::accept_invite))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::invite_accepted))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::request_join))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::get_join_request))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::list_join_requests))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::join_request_list))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::approve_join))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::join_approved))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::list_audit))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::audit_list))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::audit_note))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::set_calendar_sync))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::apply_office365))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::http_forward))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::http_answer))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::key_read))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::key_value))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::key_reads))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::key_values))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::stored_row))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::shard_rows))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::shard_moved))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::shard_moves))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::reminder))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::cancel_reminder))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::reminder_due))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::reminder_stats))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::permit_request))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::graph_permit))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::governor_stats))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::user_patch))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::update_user))
  // t13-mailbox: the mailbox actor's Graph budget
  CAF_ADD_TYPE_ID(crmsync, (crmsync::mailbox_slot_request))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::mailbox_slot))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::mailbox_slot_release))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::mailbox_budget_request))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::mailbox_budget))

  // t14-data: disconnect Office 365, delete an organization
  CAF_ADD_TYPE_ID(crmsync, (crmsync::disconnect_office365))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::close_org))

  // t14-life3: the rest of the user lifecycle (protocol/lifecycle.hpp)
  CAF_ADD_TYPE_ID(crmsync, (crmsync::delete_user))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::user_deleted))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::api_token))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::token_info))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::token_list))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::list_tokens))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::create_token))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::revoke_token))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::revoke_invite))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::reject_join))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::offboard_user))
  CAF_ADD_TYPE_ID(crmsync, (crmsync::set_password))

  // t14-cookie
  CAF_ADD_TYPE_ID(crmsync, (crmsync::revoke_page_token))

  // t15-sessions
  CAF_ADD_TYPE_ID(crmsync, (crmsync::open_page_session))

CAF_END_TYPE_ID_BLOCK(crmsync)

namespace crmsync {

/// Registers every project message type on a config (call once per process).
void register_types(caf::actor_system_config& cfg);

} // namespace crmsync
