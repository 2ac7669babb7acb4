// Writes the seed corpus of storage_codec_fuzz: one value of each record
// kind, made by the encoders (storage/codec.hpp) from realistic records, so
// the corpus follows the format when it changes.
//
// Usage: storage_codec_seeds DIR (fuzz/corpus/storage_codec_fuzz).
#include <cstdio>
#include <fstream>
#include <string>

#include "storage/codec.hpp"

using namespace crmsync;
namespace codec = crmsync::storage::codec;

namespace {

constexpr int64_t t0 = 1796119200000; // 2026-12-01T10:00:00Z

bool write(const std::string& dir, const char* name, const std::string& v) {
  std::ofstream out{dir + "/" + name, std::ios::binary};
  out << v;
  return static_cast<bool>(out);
}

o365_identity ada() {
  o365_identity who;
  who.tenant = "b0000000-0000-4000-8000-000000000001";
  who.user = "a0000000-0000-4000-8000-000000000001";
  who.email = "ada@contoso.example";
  who.name = "Ada Lovelace";
  who.is_admin = true;
  return who;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: storage_codec_seeds DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  tenant_id org{0x1234};
  user_id user{0x42};
  event_id event{0x4242};
  bool ok = true;

  org_record o;
  o.id = org;
  o.name = "Contoso";
  o.plan = edition::paid;
  o.super_admin = user;
  o.user_count = 12;
  o.event_count = 340;
  o.created_ms = t0;
  o.modified_ms = t0 + 1000;
  o.o365_tenant = ada().tenant;
  o.conflicts = conflict_policy::office365;
  ok &= write(dir, "org", codec::encode(o));

  user_record u;
  u.id = user;
  u.org = org;
  u.email = "ada@contoso.example";
  u.name = "Ada Lovelace";
  u.role = profile::administrator;
  u.manage_users = true;
  u.super_admin = true;
  u.password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
  u.token_hash = std::string(64, 'a');
  u.created_ms = t0;
  u.modified_ms = t0;
  u.o365_tenant = ada().tenant;
  u.o365_user = ada().user;
  u.signin_token_hashes = {std::string(64, 'b'), std::string(64, 'c')};
  ok &= write(dir, "user", codec::encode(u));

  event_record e;
  e.id = event;
  e.org = org;
  e.owner = user;
  e.title = "Kick-off";
  e.start_ms = t0;
  e.end_ms = t0 + 3600000;
  e.time_zone = "Europe/Berlin";
  e.location = "Room 1";
  e.description = "Agenda: scope, dates";
  e.participants
      = {{"bob@contoso.example", "Bob"}, {"carol@contoso.example", "Carol"}};
  e.origin = event_origin::office365;
  e.version = 3;
  e.created_ms = t0 - 86400000;
  e.modified_ms = t0 - 3600000;
  ok &= write(dir, "event", codec::encode(e));
  e.all_day = true;
  e.participants.clear();
  ok &= write(dir, "event_all_day", codec::encode(e));

  mailbox_status m;
  m.org = org;
  m.user = user;
  m.office365_linked = true;
  m.office365_user_id = ada().user;
  m.office365_tenant_id = ada().tenant;
  ok &= write(dir, "mailbox", codec::encode(m));

  calendar_status c;
  c.org = org;
  c.user = user;
  c.state = calendar_state::active;
  c.done = 20;
  c.total = 20;
  c.office365_calendar_id = "AAMkAGI2TGuLAAA=";
  c.delta_link = "https://graph.microsoft.com/v1.0/users/" + ada().user
                 + "/calendars/AAMkAGI2TGuLAAA=/calendarView/delta?"
                   "$deltatoken=R0usmci39OQxqJrxK4";
  c.subscription_id = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07";
  c.subscription_expires_ms = t0 + 3 * 86400000LL;
  c.client_state = "secretClientValue";
  c.last_sync_ms = t0;
  c.out_created = 20;
  c.in_updated = 2;
  c.deletes_window_ms = t0;
  c.deletes_in_window = 1;
  ok &= write(dir, "calendar", codec::encode(c));

  invite_record i;
  i.id = 7;
  i.org = org;
  i.o365_user = "a0000000-0000-4000-8000-000000000002";
  i.email = "bob@contoso.example";
  i.name = "Bob";
  i.inviter = user;
  i.token_hash = std::string(64, 'd');
  i.status = invite_status::accepted;
  i.member = user_id{0x43};
  i.created_ms = t0;
  i.expires_ms = t0 + 7 * 86400000LL;
  i.resolved_ms = t0 + 1000;
  ok &= write(dir, "invite", codec::encode(i));

  join_request_record j;
  j.id = 8;
  j.org = org;
  j.o365_user = "a0000000-0000-4000-8000-000000000003";
  j.email = "carol@contoso.example";
  j.name = "Carol";
  j.status = join_status::approved;
  j.approved_by = user;
  j.member = user_id{0x44};
  j.created_ms = t0;
  j.resolved_ms = t0 + 5000;
  ok &= write(dir, "join", codec::encode(j));

  audit_entry a;
  a.org = org;
  a.at_ms = t0;
  a.seq = 2;
  a.actor = "office365:ada@contoso.example";
  a.action = "invite.sent";
  a.detail = "bob@contoso.example";
  ok &= write(dir, "audit", codec::encode(a));

  mail_item mi;
  mi.id = 9;
  mi.org = org;
  mi.o365_tenant = ada().tenant;
  mi.sender = ada().user;
  mi.to = "bob@contoso.example";
  mi.subject = "Ada invites you to Contoso's CRM";
  mi.html = "<p>Join: <a href=\"https://crm.example/invite/x\">here</a></p>";
  mi.attempts = 2;
  mi.last_error = "Graph 429 TooManyRequests";
  mi.created_ms = t0;
  mi.next_attempt_ms = t0 + 4000;
  ok &= write(dir, "mail", codec::encode(mi));

  signin_state_record s;
  s.purpose = "install";
  s.nonce = "n-0S6_WzA2Mj";
  s.o365_tenant = ada().tenant;
  s.who = ada();
  s.expires_ms = t0 + 600000;
  s.invite_token = "inv_3q2+7w";
  ok &= write(dir, "signin", codec::encode(s));

  o365_session_record se;
  se.who = ada();
  se.expires_ms = t0 + 3600000;
  ok &= write(dir, "session", codec::encode(se));

  sync_request r;
  r.enabled = true;
  r.at_ms = t0;
  ok &= write(dir, "sync_request", codec::encode(r));

  sync_link l;
  l.event = event;
  l.graph_id = "AAMkAGI2TGuLAAA=";
  l.change_key = "CQAAABYAAABHg";
  l.crm_version = 3;
  ok &= write(dir, "sync_link", codec::encode(l));

  sync_change ch;
  ch.event = event;
  ch.deleted = true;
  ch.at_ms = t0;
  ok &= write(dir, "sync_change", codec::encode(ch));

  sync_conflict cf;
  cf.user = user;
  cf.event = event;
  cf.graph_id = "AAMkAGI2TGuLAAA=";
  cf.at_ms = t0;
  cf.policy = "latest";
  cf.winner = "office365";
  cf.kept = "\"Kick-off\" 2026-12-01T10:00:00Z - 2026-12-01T11:00:00Z";
  cf.lost = "\"Kickoff\" 2026-12-01T10:00:00Z - 2026-12-01T11:00:00Z";
  ok &= write(dir, "sync_conflict", codec::encode(cf));

  if (!ok) {
    std::fprintf(stderr, "storage_codec_seeds: cannot write to %s\n",
                 dir.c_str());
    return 1;
  }
  return 0;
}
