// The audit log: entries written with the command they record, refusals
// recorded, the log listed for administrators, notes from other parts.
#include "actors/tenant/handlers.hpp"

#include <algorithm>

#include "actors/tenant/records.hpp"
#include "common/log.hpp"

namespace crmsync::actors::tenant_impl {

std::string actor_name(const user_record* u) {
  return u == nullptr ? std::string{"service-admin"}
                      : "user:" + u->id.str() + " (" + u->email + ")";
}

std::string actor_name(const o365_identity& who) {
  return "office365:" + who.email;
}

void put_audit(self_ptr self, storage::write_batch& b, std::string actor,
               std::string action, std::string detail) {
  auto& st = self->state;
  audit_entry a;
  a.org = st.id;
  a.at_ms = st.env->now_ms();
  a.seq = st.env->random_id();
  a.actor = std::move(actor);
  a.action = std::move(action);
  a.detail = std::move(detail);
  // The HTTP request that caused it, when a handler runs for one
  // (check_caller's scope).
  a.request_id = log::current().request_id;
  b.put(column::audit, keys::audit(a.org, a.at_ms, a.seq), codec::encode(a));
}

/// Records a refused request in the audit log, then answers the refusal
/// (a failed audit write does not change the answer).
caf::error refused(self_ptr self, std::string actor, std::string action,
                   std::string detail, caf::error answer) {
  storage::write_batch b;
  put_audit(self, b, std::move(actor), std::move(action), std::move(detail));
  if (auto err = self->state.env->db->write(b))
    log::warn("tenant: cannot audit a refusal");
  return answer;
}

caf::result<audit_list> handle(self_ptr self, list_audit& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  if (!is_admin(*who) && !can_manage_users(*who))
    return forbidden("the audit log is for administrators");
  audit_list out;
  if (auto err = scan_records(self, column::audit, out.items))
    return err;
  // Newest first, at most `limit`.
  std::reverse(out.items.begin(), out.items.end());
  if (out.items.size() > cmd.limit)
    out.items.resize(cmd.limit);
  (void)st;
  return out;
}

caf::result<bool> handle(self_ptr self, audit_note& note) {
  leave_if_empty(self);
  if (!self->state.exists)
    return not_found("organization");
  storage::write_batch b;
  put_audit(self, b, std::move(note.actor), std::move(note.action),
            std::move(note.detail));
  if (auto err = self->state.env->db->write(b))
    return err;
  return true;
}

} // namespace crmsync::actors::tenant_impl
