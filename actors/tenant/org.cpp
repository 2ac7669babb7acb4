// The organization record: creating it (with its super administrator,
// possibly installed from Office 365), reading and updating it.
#include "actors/tenant/handlers.hpp"

namespace crmsync::actors::tenant_impl {

void put_org(self_ptr self, storage::write_batch& b, const org_record& o) {
  b.put(column::orgs, keys::org(o.id), codec::encode(o));
}

caf::result<org_created> handle(self_ptr self, create_org& cmd) {
  auto& st = self->state;
  if (!cmd.who.service_admin) {
    leave_if_empty(self);
    return forbidden("creating organizations needs the service admin "
                     "token");
  }
  if (st.exists || st.closed)
    return make_crm_error(crm_errc::conflict, "id_collision",
                          "generated id already in use; retry");
  auto now = st.env->now_ms();
  org_record org;
  org.id = st.id;
  org.name = cmd.name;
  org.plan = cmd.plan;
  org.super_admin = cmd.admin.id;
  org.user_count = 1;
  org.created_ms = now;
  org.modified_ms = now;
  auto admin = make_user(self, cmd.admin, now);
  admin.role = profile::administrator;
  admin.manage_users = true;
  admin.super_admin = true;
  storage::write_batch b;
  auto claims = user_claims(admin);
  if (!cmd.o365_tenant.empty()) {
    // Installed from Office 365 (R2, R3): the organization and its
    // super administrator are linked to the installing admin.
    org.o365_tenant = cmd.o365_tenant;
    admin.o365_tenant = cmd.o365_tenant;
    admin.o365_user = cmd.o365_user;
    // Issued by the installing admin's sign-in: it expires like one.
    admin.add_signin_token(admin.token_hash, false, now, 1);
    claims.push_back({column::lookup, keys::o365_tenant_lookup(org.o365_tenant),
                      keys::org(org.id)});
    claims.push_back(o365_user_claim(admin));
    put_audit(self, b, "office365:" + admin.email, "install",
              "installed from Office 365 tenant " + org.o365_tenant
                  + "; created the organization with " + admin.email
                  + " as super administrator");
  }
  put_org(self, b, org);
  put_user(b, admin);
  for (auto& c : claims)
    b.put(c.cf, c.key, c.value);
  if (auto err = st.env->db->write_claimed(b, claims)) {
    // Nothing was written: the id stays free and this actor goes,
    // so failed creations cannot pile up live actors.
    leave_if_empty(self);
    return claim_error(err, admin, "admin.email");
  }
  st.org = org;
  st.exists = true;
  st.users[admin.id] = admin;
  return org_created{org, admin};
}

caf::result<org_record> handle(self_ptr self, get_org& cmd) {
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  return self->state.org;
}

caf::result<org_record> handle(self_ptr self, update_org& cmd) {
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  if (cmd.set_plan && *who != nullptr)
    return forbidden("changing the edition needs the service admin token");
  if ((cmd.set_name || cmd.set_conflicts) && !is_admin(*who))
    return forbidden("renaming the organization or changing its "
                     "conflict policy needs an administrator");
  auto org = self->state.org;
  if (cmd.set_name)
    org.name = cmd.name;
  if (cmd.set_plan)
    org.plan = cmd.plan;
  if (cmd.set_conflicts)
    org.conflicts = cmd.conflicts;
  org.modified_ms = self->state.env->now_ms();
  storage::write_batch b;
  put_org(self, b, org);
  // Who changed the edition, as for every other act of an administrator
  // (the admin page shows the audit log). t16-admin.
  if (cmd.set_plan && cmd.plan != self->state.org.plan)
    put_audit(self, b, actor_name(*who), "org.edition_changed",
              std::string{to_string(self->state.org.plan)} + " -> "
                  + to_string(org.plan));
  if (auto err = self->state.env->db->write(b))
    return err;
  self->state.org = org;
  return org;
}

caf::result<org_record> handle(self_ptr self, tenant_summary_request&) {
  leave_if_empty(self);
  if (!self->state.exists)
    return not_found("organization");
  return self->state.org;
}

} // namespace crmsync::actors::tenant_impl
