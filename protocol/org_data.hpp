// Commands over an organization as a whole: disconnecting it from Office
// 365 and closing it before it is deleted (api/org_data_api.cpp does the
// rest of a deletion: waiting for the sync teardown, removing the rows).
#pragma once

#include <caf/meta/type_name.hpp>

#include "protocol/messages.hpp"

namespace crmsync {

/// Unlinks the organization from its Office 365 tenant (an administrator):
/// every user's sync is turned off (the CRM calendars and subscriptions go
/// from Office 365), the users' Office 365 links and the tokens their
/// Office 365 sign-ins issued are dropped; CRM data stays. Answers the
/// organization as it is afterwards.
struct disconnect_office365 {
  caller who;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, disconnect_office365& x) {
  return f(caf::meta::type_name("crmsync::disconnect_office365"), x.who);
}

/// Closes the organization for good (the service admin, before deleting
/// it): a durable marker makes it answer "not found" from then on, also
/// after a restart, and every user's sync is turned off. Answers the
/// organization as it was.
struct close_org {
  caller who;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, close_org& x) {
  return f(caf::meta::type_name("crmsync::close_org"), x.who);
}

} // namespace crmsync
