#include "api/records_json.hpp"

#include "common/text.hpp"
#include "common/time_format.hpp"

namespace crmsync::http {

void write_invite(json::writer& w, const invite_record& x) {
  w.begin_object();
  w.key("id").value(to_hex16(x.id));
  w.key("org").value(x.org.str());
  w.key("office365_user_id").value(x.o365_user);
  w.key("email").value(x.email);
  w.key("name").value(x.name);
  w.key("status").value(to_string(x.status));
  w.key("invited_by").id_or_null(x.inviter);
  w.key("user").id_or_null(x.member);
  w.key("created").value(format_rfc3339(x.created_ms));
  w.key("expires").value(format_rfc3339(x.expires_ms));
  w.key("resolved").time_or_null(x.resolved_ms);
  w.end_object();
}

void write_join_request(json::writer& w, const join_request_record& x) {
  w.begin_object();
  w.key("id").value(to_hex16(x.id));
  w.key("org").value(x.org.str());
  w.key("office365_user_id").value(x.o365_user);
  w.key("email").value(x.email);
  w.key("name").value(x.name);
  w.key("status").value(to_string(x.status));
  w.key("approved_by").id_or_null(x.approved_by);
  w.key("user").id_or_null(x.member);
  w.key("created").value(format_rfc3339(x.created_ms));
  w.key("resolved").time_or_null(x.resolved_ms);
  w.end_object();
}

void write_audit_entry(json::writer& w, const audit_entry& a) {
  w.begin_object();
  w.key("at").value(format_rfc3339_ms(a.at_ms));
  w.key("actor").value(a.actor);
  w.key("action").value(a.action);
  w.key("detail").value(a.detail);
  w.key("request_id").value_or_null(a.request_id);
  w.end_object();
}

} // namespace crmsync::http
