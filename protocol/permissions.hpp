// Who may do what to an organization's users and events.
//
// The authorization rules as pure functions over user records, so that the
// tenant actor (which enforces them) and any other layer that checks early
// agree. A null `who` is the service admin, who may do everything. Pure
// functions; thread-safe.
#pragma once

#include <caf/error.hpp>

#include "protocol/ids.hpp"
#include "protocol/records.hpp"

namespace crmsync {

/// The rights a user holds: the profile and the permissions on top of it.
struct user_rights {
  profile role = profile::standard;
  bool manage_users = false;
  bool view_all_events = false;
  bool super_admin = false;
};

/// The rights stored on a user.
user_rights rights_of(const user_record& u);

/// Administrators (and the super administrator) run the organization.
bool is_admin(const user_record* who);

/// Adding users, inviting and approving join requests.
bool can_manage_users(const user_record* who);

/// Reading every member's events: administrators, and users given the
/// View All Events permission.
bool can_view_all_events(const user_record* who);

/// Reading or listing the events of `owner`: the owner, and those who may
/// view all events.
bool may_read_events_of(const user_record* who, user_id owner);

/// Seeing the details (subject, body, location, participants, categories)
/// of `e` when it is private or confidential: its owner and
/// administrators; others who may read it see busy time only.
bool may_see_private_details(const user_record* who, const event_record& e);

/// Creating, changing or deleting the events of `owner`: the owner and
/// administrators.
bool may_write_events_of(const user_record* who, user_id owner);

/// Whether `who` may give a user the rights `wanted`: none when allowed,
/// else a 403 naming what is missing. `before` is the user's current
/// rights when editing, nullptr when creating. A caller grants only what
/// it holds: only administrators make (or unmake) administrators, and only
/// a super administrator makes another one or stops being one (handing
/// the role over).
caf::error check_grant(const user_record* who, const user_rights* before,
                       const user_rights& wanted);

} // namespace crmsync
