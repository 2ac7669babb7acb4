// Who is calling: the caller's token checked against this tenant, and
// a tenant without an organization asking to be passivated.
#include "actors/tenant/state.hpp"

#include <caf/send.hpp>

namespace crmsync::actors::tenant_impl {

/// A tenant without an organization only answers "no such thing"; it asks
/// the directory to passivate it (once) so that probing random ids cannot
/// pile up live actors. The directory's buffering still applies.
void leave_if_empty(self_ptr self) {
  auto& st = self->state;
  if (st.exists || st.asked_to_go || !st.directory)
    return;
  st.asked_to_go = true;
  // Anonymous: the directory's answer is of no use here.
  caf::anon_send(st.directory, atom::passivate_atom_v,
                 entity_key{entity_kind::tenant, st.id, user_id{}});
}

namespace {

/// The authenticated principal: nullptr for the service admin, else the
/// user whose token was presented.
caf::expected<const user_record*> principal_of(self_ptr self,
                                               const caller& who) {
  leave_if_empty(self);
  if (who.service_admin) {
    if (!self->state.exists)
      return not_found("organization");
    return static_cast<const user_record*>(nullptr);
  }
  auto unauthorized = make_crm_error(crm_errc::unauthorized, "unauthorized",
                                     "the API token is not valid");
  if (!self->state.exists)
    return unauthorized;
  auto u = find_user(self, who.user);
  if (!u)
    return u.error();
  if (*u == nullptr
      || !(*u)->token_valid(who.token_hash, self->state.env->now_ms(),
                            self->state.env->session_ttl_ms))
    return unauthorized;
  // Deactivation clears the tokens; this holds should one be issued later.
  if ((*u)->deactivated)
    return make_crm_error(crm_errc::unauthorized, "user_deactivated",
                          "this user is deactivated");
  return *u;
}

} // namespace

log::context caller_context(self_ptr self, const caller& who) {
  log::context ctx;
  ctx.request_id = who.request_id;
  ctx.org = self->state.id.str();
  if (!who.service_admin)
    ctx.user = who.user.str();
  return ctx;
}

checked_caller check_caller(self_ptr self, const caller& who) {
  return checked_caller{principal_of(self, who), caller_context(self, who)};
}

} // namespace crmsync::actors::tenant_impl
