// E-mail the tenant queues in the outbox (invitations, join requests):
// written with the command, sent by the node's mailer once durable.
#include "actors/tenant/state.hpp"

namespace crmsync::actors::tenant_impl {

void put_mail(self_ptr self, storage::write_batch& b, std::string sender,
              std::string to, std::string subject, std::string html) {
  auto& st = self->state;
  mail_item m;
  m.id = st.env->random_id();
  m.org = st.id;
  m.o365_tenant = st.org.o365_tenant;
  m.sender = std::move(sender);
  m.to = std::move(to);
  m.subject = std::move(subject);
  m.html = std::move(html);
  m.created_ms = st.env->now_ms();
  auto key = keys::tenant_item(st.id, m.id);
  b.put(column::outbox, key, codec::encode(m));
  st.mail_keys.push_back(std::move(key));
}

/// The mailbox a user manager's e-mail goes out from: theirs when linked to
/// Office 365, else the super administrator's; "" when neither is.
std::string mail_sender(self_ptr self, const user_record* who) {
  auto& st = self->state;
  if (who != nullptr && !who->o365_user.empty())
    return who->o365_user;
  auto admin = find_user(self, st.org.super_admin);
  if (admin && *admin != nullptr)
    return (*admin)->o365_user;
  return {};
}

/// Hands the mailer the keys put_mail wrote once the write is durable. A
/// key of a write that failed may travel with them: the mailer finds no
/// row for it and drops it.
void mail_written(self_ptr self) {
  auto& st = self->state;
  auto keys = std::move(st.mail_keys);
  st.mail_keys.clear();
  if (st.env->mail_queued && !keys.empty())
    st.env->mail_queued(std::move(keys));
}

/// Escapes text for an HTML e-mail body.
std::string html_text(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

} // namespace crmsync::actors::tenant_impl
