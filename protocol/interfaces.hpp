// Typed handles of the virtual actors (tenant, mailbox, calendar).
//
// The directory actor (actors/directory.hpp) activates them on demand and
// forwards `(route_atom, entity_key, message)` to them; every kind answers
// `passivate_atom` with true when it agrees to stop, and `stats_atom` with
// the number of messages still waiting in its mailbox (introspection).
#pragma once

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "protocol/type_ids.hpp"

namespace crmsync {

using tenant_actor = caf::typed_actor<
    caf::replies_to<create_org>::with<org_created>,
    caf::replies_to<get_org>::with<org_record>,
    caf::replies_to<update_org>::with<org_record>,
    caf::replies_to<create_user>::with<user_record>,
    caf::replies_to<get_user>::with<user_record>,
    caf::replies_to<update_user>::with<user_record>,
    caf::replies_to<authenticate>::with<user_record>,
    caf::replies_to<list_users>::with<user_page>,
    caf::replies_to<create_event>::with<event_record>,
    caf::replies_to<get_event>::with<event_record>,
    caf::replies_to<update_event>::with<event_record>,
    caf::replies_to<delete_event>::with<event_deleted>,
    caf::replies_to<list_events>::with<event_page>,
    caf::replies_to<import_events>::with<events_imported>,
    caf::replies_to<mass_update>::with<events_updated>,
    caf::replies_to<tenant_summary_request>::with<org_record>,
    caf::replies_to<link_office365>::with<user_record>,
    caf::replies_to<invite_users>::with<invite_list>,
    caf::replies_to<list_invites>::with<invite_list>,
    caf::replies_to<list_my_invites>::with<invite_list>,
    caf::replies_to<accept_invite>::with<invite_accepted>,
    caf::replies_to<request_join>::with<join_request_record>,
    caf::replies_to<get_join_request>::with<join_request_record>,
    caf::replies_to<list_join_requests>::with<join_request_list>,
    caf::replies_to<approve_join>::with<join_approved>,
    caf::replies_to<list_audit>::with<audit_list>,
    caf::replies_to<audit_note>::with<bool>,
    caf::replies_to<set_calendar_sync>::with<calendar_status>,
    caf::replies_to<apply_office365>::with<event_record>,
    caf::replies_to<atom::stats_atom>::with<uint64_t>,
    caf::replies_to<atom::passivate_atom>::with<bool>,
    // t14-data: disconnect Office 365, delete an organization
    caf::replies_to<disconnect_office365>::with<org_record>,
    caf::replies_to<close_org>::with<org_record>,
    // t14-life3: the rest of the user lifecycle
    caf::replies_to<delete_user>::with<user_deleted>,
    caf::replies_to<list_tokens>::with<token_list>,
    caf::replies_to<create_token>::with<token_info>,
    caf::replies_to<revoke_token>::with<token_info>,
    caf::replies_to<revoke_invite>::with<invite_record>,
    caf::replies_to<reject_join>::with<join_request_record>,
    caf::replies_to<offboard_user>::with<user_record>,
    caf::replies_to<set_password>::with<user_record>,
    // t14-cookie
    caf::replies_to<revoke_page_token>::with<bool>,
    // t15-sessions
    caf::replies_to<open_page_session>::with<bool>>;

/// A user's Office 365 mailbox: its link status, and its Graph budget
/// (slots for the calendar sync and the mailer; actors/mailbox.cpp).
/// `wake_atom` and `idle_atom` with a generation are its own timers.
using mailbox_actor = caf::typed_actor<
    caf::replies_to<status_request>::with<mailbox_status>,
    caf::replies_to<atom::stats_atom>::with<uint64_t>,
    caf::replies_to<atom::passivate_atom>::with<bool>,
    caf::replies_to<mailbox_slot_request>::with<mailbox_slot>,
    caf::reacts_to<mailbox_slot_release>,
    caf::replies_to<mailbox_budget_request>::with<mailbox_budget>,
    caf::reacts_to<atom::wake_atom, uint64_t>,
    caf::reacts_to<atom::idle_atom, uint64_t>>;

/// A calendar: its sync status, and what makes it sync (a CRM write:
/// `wake_atom`; a change notification stored at a time: `notify_atom`; a
/// resync; its reconciliation reminder). The syncing implementation is
/// sync/calendar_sync.hpp; without Office 365 the node's calendars only
/// answer status (actors/calendar.cpp).
using calendar_actor = caf::typed_actor<
    caf::replies_to<status_request>::with<calendar_status>,
    caf::replies_to<atom::stats_atom>::with<uint64_t>,
    caf::replies_to<atom::passivate_atom>::with<bool>,
    caf::reacts_to<atom::wake_atom>, caf::reacts_to<atom::notify_atom, int64_t>,
    caf::reacts_to<atom::resync_atom>, caf::reacts_to<reminder_due>>;

/// The node's durable reminders (actors/reminders.hpp). `wake_atom` with a
/// generation is its own timer message.
using reminders_actor
    = caf::typed_actor<caf::replies_to<reminder>::with<reminder>,
                       caf::replies_to<cancel_reminder>::with<bool>,
                       caf::replies_to<atom::stats_atom>::with<reminder_stats>,
                       caf::reacts_to<atom::wake_atom, uint64_t>,
                       caf::reacts_to<atom::run_atom>>;

/// The node's Graph governor (actors/governor.hpp). `wake_atom` with a
/// generation is its own timer message.
using governor_actor
    = caf::typed_actor<caf::replies_to<permit_request>::with<graph_permit>,
                       caf::replies_to<atom::stats_atom>::with<governor_stats>,
                       caf::reacts_to<atom::wake_atom, uint64_t>>;

} // namespace crmsync
