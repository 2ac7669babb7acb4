#include "storage/codec.hpp"

#include <catch2/catch.hpp>

using namespace crmsync;
namespace codec = crmsync::storage::codec;

namespace {

event_record sample_event() {
  event_record e;
  e.id = event_id{0xfedcba9876543210};
  e.org = tenant_id{1};
  e.owner = user_id{2};
  e.title = "Quarterly review \xe2\x9c\x93";
  e.start_ms = -123456789;
  e.end_ms = 1'795'000'000'000;
  e.all_day = true;
  e.time_zone = "W. Europe Standard Time";
  e.location = "Room 4";
  e.description = std::string(5000, 'x');
  e.participants = {{"a@example.com", "A"}, {"b@example.com", ""}};
  e.origin = event_origin::mass_update;
  e.version = 77;
  e.created_ms = 1;
  e.modified_ms = 2;
  e.sensitivity = "confidential";
  e.show_as = "workingElsewhere";
  e.reminder_on = false;
  e.reminder_minutes = 1440;
  e.categories = {"Red category", "Kunden \xc3\xa4"};
  return e;
}

/// The bytes an event was stored as before sensitivity, showAs, reminders
/// and categories: what follows modified_ms is cut off.
std::string old_event_value(const event_record& e) {
  auto bytes = codec::encode(e);
  size_t tail = 1 + e.sensitivity.size() + 1 + e.show_as.size() + 1 + 2 + 1;
  for (auto& c : e.categories)
    tail += 1 + c.size();
  return bytes.substr(0, bytes.size() - tail);
}

bool same(const event_record& a, const event_record& b) {
  if (a.participants.size() != b.participants.size())
    return false;
  for (size_t i = 0; i < a.participants.size(); ++i)
    if (a.participants[i].email != b.participants[i].email
        || a.participants[i].name != b.participants[i].name)
      return false;
  return a.id == b.id && a.org == b.org && a.owner == b.owner
         && a.title == b.title && a.start_ms == b.start_ms
         && a.end_ms == b.end_ms && a.all_day == b.all_day
         && a.time_zone == b.time_zone && a.location == b.location
         && a.description == b.description && a.origin == b.origin
         && a.version == b.version && a.created_ms == b.created_ms
         && a.modified_ms == b.modified_ms && a.sensitivity == b.sensitivity
         && a.show_as == b.show_as && a.reminder_on == b.reminder_on
         && a.reminder_minutes == b.reminder_minutes
         && a.categories == b.categories;
}

} // namespace

TEST_CASE("events round-trip through the codec", "[storage][codec]") {
  auto e = sample_event();
  event_record back;
  REQUIRE(codec::decode(codec::encode(e), back));
  CHECK(same(e, back));
}

TEST_CASE("an event stored before sensitivity, showAs, reminders and "
          "categories reads back with Outlook's defaults",
          "[storage][codec][fidelity]") {
  auto e = sample_event();
  auto old = old_event_value(e);
  event_record back;
  back.sensitivity = "private"; // whatever was there before is replaced
  back.categories = {"stale"};
  REQUIRE(codec::decode(old, back));
  CHECK(back.title == e.title);
  CHECK(back.modified_ms == e.modified_ms);
  CHECK(back.sensitivity == "normal");
  CHECK(back.show_as == "busy");
  CHECK(back.reminder_on);
  CHECK(back.reminder_minutes == 15);
  CHECK(back.categories.empty());
  // Half of the new fields is damage, not an old value.
  auto full = codec::encode(e);
  for (size_t n = old.size() + 1; n < full.size(); ++n)
    CHECK_FALSE(codec::decode(full.substr(0, n), back));
}

TEST_CASE("users and organizations round-trip", "[storage][codec]") {
  user_record u;
  u.id = user_id{5};
  u.org = tenant_id{6};
  u.email = "x@y.z";
  u.name = "X";
  u.role = profile::administrator;
  u.manage_users = true;
  u.super_admin = true;
  u.password_hash = "$argon2id$v=19$...";
  u.token_hash = std::string(64, 'a');
  u.created_ms = -1;
  u.modified_ms = 99;
  user_record ub;
  REQUIRE(codec::decode(codec::encode(u), ub));
  CHECK(ub.id == u.id);
  CHECK(ub.org == u.org);
  CHECK(ub.email == u.email);
  CHECK(ub.role == profile::administrator);
  CHECK(ub.manage_users);
  CHECK(ub.super_admin);
  CHECK(ub.password_hash == u.password_hash);
  CHECK(ub.token_hash == u.token_hash);
  CHECK(ub.created_ms == -1);
  org_record o;
  o.id = tenant_id{8};
  o.name = "Acme";
  o.plan = edition::paid;
  o.super_admin = user_id{5};
  o.user_count = 3;
  o.event_count = uint64_t{1} << 40;
  org_record ob;
  REQUIRE(codec::decode(codec::encode(o), ob));
  CHECK(ob.name == "Acme");
  CHECK(ob.plan == edition::paid);
  CHECK(ob.super_admin == user_id{5});
  CHECK(ob.event_count == (uint64_t{1} << 40));
}

TEST_CASE("sync state records round-trip", "[storage][codec]") {
  calendar_status c;
  c.org = tenant_id{1};
  c.user = user_id{2};
  c.state = calendar_state::active;
  c.done = 10;
  c.total = 20;
  c.office365_calendar_id = "AAMk";
  calendar_status cb;
  REQUIRE(codec::decode(codec::encode(c), cb));
  CHECK(cb.state == calendar_state::active);
  CHECK(cb.done == 10);
  CHECK(cb.office365_calendar_id == "AAMk");
  CHECK(cb.skipped.empty());
  // Refused events and an open alert round-trip too.
  c.state = calendar_state::error;
  c.resume_state = "active";
  c.alert = "access_denied";
  c.skipped.push_back(
      skipped_event{event_id{7}, 3, 1700, 400, "ErrorInvalidProperty", "bad"});
  REQUIRE(codec::decode(codec::encode(c), cb));
  CHECK(cb.resume_state == "active");
  CHECK(cb.alert == "access_denied");
  REQUIRE(cb.skipped.size() == 1);
  CHECK(cb.skipped[0].event == event_id{7});
  CHECK(cb.skipped[0].version == 3);
  CHECK(cb.skipped[0].at_ms == 1700);
  CHECK(cb.skipped[0].status == 400);
  CHECK(cb.skipped[0].code == "ErrorInvalidProperty");
  CHECK(cb.skipped[0].message == "bad");
  // A record written before the last failed Graph call was kept ends
  // after the alert: it reads with no failure.
  auto before_failures = codec::encode(c);
  before_failures.resize(before_failures.size() - 6); // 2 zeros, 4 ""
  REQUIRE(codec::decode(before_failures, cb));
  CHECK(cb.alert == "access_denied");
  CHECK(cb.last_failure.at_ms == 0);
  // The last failed Graph call and its ids round-trip.
  c.last_failure
      = graph_failure{1800,     403,     "ErrorAccessDenied",
                      "crid-1", "rid-2", "Mon, 07 Dec 2026 00:00:00 GMT"};
  REQUIRE(codec::decode(codec::encode(c), cb));
  CHECK(cb.last_failure.at_ms == 1800);
  CHECK(cb.last_failure.status == 403);
  CHECK(cb.last_failure.code == "ErrorAccessDenied");
  CHECK(cb.last_failure.client_request_id == "crid-1");
  CHECK(cb.last_failure.request_id == "rid-2");
  CHECK(cb.last_failure.date == "Mon, 07 Dec 2026 00:00:00 GMT");
  auto bytes = codec::encode(c);
  for (size_t n = bytes.size() - 8; n < bytes.size(); ++n)
    CHECK_FALSE(codec::decode(bytes.substr(0, n), cb));
  mailbox_status m;
  m.office365_linked = true;
  m.office365_user_id = "oid";
  mailbox_status mb;
  REQUIRE(codec::decode(codec::encode(m), mb));
  CHECK(mb.office365_linked);
  CHECK(mb.office365_user_id == "oid");
}

TEST_CASE("a calendar state is stored by the name it always had",
          "[storage][codec]") {
  // The names records written before the state was an enum hold.
  for (std::string name : {"disabled", "enabling", "initial_sync", "active",
                           "held", "disabling", "error"}) {
    calendar_status c;
    REQUIRE(from_string(name, c.state));
    CHECK(to_string(c.state) == name);
    auto bytes = codec::encode(c);
    CHECK(bytes.find(name) != std::string::npos);
    calendar_status back;
    REQUIRE(codec::decode(bytes, back));
    CHECK(back.state == c.state);
  }
  // A name crmsync does not know is refused, never read as another state.
  calendar_status c;
  c.state = calendar_state::active;
  auto bytes = codec::encode(c);
  bytes.replace(bytes.find("active"), 6, "paused");
  calendar_status back;
  CHECK_FALSE(codec::decode(bytes, back));
  calendar_state x = calendar_state::held;
  CHECK_FALSE(from_string("Active", x));
  CHECK(x == calendar_state::held);
}

TEST_CASE("damaged values are refused, never misread", "[storage][codec]") {
  auto bytes = codec::encode(sample_event());
  event_record out;
  // Every truncation fails, but at the end of an older value's fields.
  auto old_size = old_event_value(sample_event()).size();
  for (size_t n = 0; n < bytes.size(); ++n)
    if (n != old_size)
      CHECK_FALSE(codec::decode(bytes.substr(0, n), out));
  // Trailing garbage fails.
  CHECK_FALSE(codec::decode(bytes + "x", out));
  // Another record kind fails.
  org_record org;
  CHECK_FALSE(codec::decode(bytes, org));
  // An unknown format version fails.
  auto future = bytes;
  future[1] = 2;
  CHECK_FALSE(codec::decode(future, out));
  // An out-of-range enum fails.
  org_record o;
  auto ob = codec::encode(o);
  // The edition byte follows tag, version, id varint (1 byte) and name.
  ob[4] = 7;
  CHECK_FALSE(codec::decode(ob, o));
  // A huge declared string length fails instead of allocating.
  std::string evil = bytes.substr(0, 2);
  evil += '\x01';                 // id
  evil += '\x01';                 // org
  evil += '\x01';                 // owner
  evil += "\xff\xff\xff\xff\x0f"; // title length ~4 GiB
  CHECK_FALSE(codec::decode(evil, out));
}

TEST_CASE("Office 365 links on users and organizations round-trip",
          "[storage][codec][office365]") {
  user_record u;
  u.id = user_id{5};
  u.org = tenant_id{6};
  u.email = "ada@contoso.example";
  u.token_hash = std::string(64, 'a');
  u.o365_tenant = "7f3c2a10-5b6d-4e8f-9a01-23456789abcd";
  u.o365_user = "a0000000-0000-4000-8000-000000000001";
  u.signin_token_hashes = {std::string(64, 'b'), std::string(64, 'c')};
  user_record ub;
  REQUIRE(codec::decode(codec::encode(u), ub));
  CHECK(ub.o365_tenant == u.o365_tenant);
  CHECK(ub.o365_user == u.o365_user);
  CHECK(ub.signin_token_hashes == u.signin_token_hashes);
  CHECK(ub.has_token_hash(std::string(64, 'a')));
  CHECK(ub.has_token_hash(std::string(64, 'c')));
  CHECK_FALSE(ub.has_token_hash(std::string(64, 'd')));

  org_record o;
  o.id = tenant_id{6};
  o.name = "Contoso";
  o.o365_tenant = u.o365_tenant;
  org_record ob;
  REQUIRE(codec::decode(codec::encode(o), ob));
  CHECK(ob.o365_tenant == o.o365_tenant);
}

TEST_CASE("records written before the Office 365 fields still decode",
          "[storage][codec][office365]") {
  // A value of the first release ends where the Office 365 fields begin:
  // drop them (three empty strings/counts of one byte each for a user, and
  // the View All Events and deactivation bytes after them, then the four
  // bytes of empty made tokens, sign-in times and password setup; one for
  // an organization) and the rest must still read, with defaults.
  user_record u;
  u.id = user_id{5};
  u.org = tenant_id{6};
  u.email = "old@acme.example";
  u.token_hash = std::string(64, 'a');
  auto bytes = codec::encode(u);
  auto old_user = bytes.substr(0, bytes.size() - 9);
  user_record ub;
  ub.o365_user = "stale";
  REQUIRE(codec::decode(old_user, ub));
  CHECK(ub.email == "old@acme.example");
  CHECK(ub.o365_user.empty());
  CHECK(ub.signin_token_hashes.empty());
  // Half of the new fields is damage, not an old value.
  CHECK_FALSE(codec::decode(bytes.substr(0, bytes.size() - 7), ub));

  org_record o;
  o.id = tenant_id{6};
  o.name = "Acme";
  auto ob = codec::encode(o);
  org_record back;
  REQUIRE(codec::decode(ob.substr(0, ob.size() - 1), back));
  CHECK(back.name == "Acme");
  CHECK(back.o365_tenant.empty());
}

TEST_CASE("invites, join requests, audit, mail and sessions round-trip",
          "[storage][codec][office365]") {
  invite_record inv;
  inv.id = 0x1234;
  inv.org = tenant_id{6};
  inv.o365_user = "oid-bob";
  inv.email = "bob@contoso.example";
  inv.name = "Bob";
  inv.inviter = user_id{5};
  inv.token_hash = std::string(64, 'f');
  inv.status = invite_status::associated;
  inv.member = user_id{9};
  inv.created_ms = 10;
  inv.expires_ms = 20;
  inv.resolved_ms = 15;
  invite_record ib;
  auto ibytes = codec::encode(inv);
  REQUIRE(codec::decode(ibytes, ib));
  CHECK(ib.id == inv.id);
  CHECK(ib.status == invite_status::associated);
  CHECK(ib.member == user_id{9});
  CHECK(ib.expires_ms == 20);
  CHECK(ib.token_hash == inv.token_hash);
  for (size_t n = 0; n < ibytes.size(); ++n)
    CHECK_FALSE(codec::decode(ibytes.substr(0, n), ib));

  join_request_record jr;
  jr.id = 77;
  jr.org = tenant_id{6};
  jr.o365_user = "oid-carol";
  jr.email = "carol@contoso.example";
  jr.status = join_status::approved;
  jr.approved_by = user_id{5};
  jr.member = user_id{10};
  join_request_record jb;
  auto jbytes = codec::encode(jr);
  REQUIRE(codec::decode(jbytes, jb));
  CHECK(jb.status == join_status::approved);
  CHECK(jb.approved_by == user_id{5});
  CHECK(jb.email == jr.email);
  for (size_t n = 0; n < jbytes.size(); ++n)
    CHECK_FALSE(codec::decode(jbytes.substr(0, n), jb));

  audit_entry a;
  a.org = tenant_id{6};
  a.at_ms = 1'795'000'000'000;
  a.seq = 3;
  a.actor = "office365:ada@contoso.example";
  a.action = "install";
  a.detail = "created";
  audit_entry ab;
  REQUIRE(codec::decode(codec::encode(a), ab));
  CHECK(ab.actor == a.actor);
  CHECK(ab.action == "install");
  CHECK(ab.at_ms == a.at_ms);
  CHECK(ab.request_id.empty());
  // An entry stored before request ids (no trailing field) still reads.
  auto old = codec::encode(a);
  old.pop_back(); // the empty request id's length
  REQUIRE(codec::decode(old, ab));
  CHECK(ab.detail == "created");
  CHECK(ab.request_id.empty());
  a.request_id = "4b1c9e0e-5f7a-4d2b-9c1e-0d6f3a2b1c0d";
  REQUIRE(codec::decode(codec::encode(a), ab));
  CHECK(ab.request_id == a.request_id);
  auto abytes = codec::encode(a);
  for (size_t n = abytes.size() - 10; n < abytes.size(); ++n)
    CHECK_FALSE(codec::decode(abytes.substr(0, n), ab));

  mail_item m;
  m.id = 4;
  m.org = tenant_id{6};
  m.o365_tenant = "tid";
  m.sender = "oid-ada";
  m.to = "bob@contoso.example";
  m.subject = "Invitation";
  m.html = "<p>Hi</p>";
  m.attempts = 2;
  m.last_error = "503 ServiceUnavailable";
  m.failed = true;
  mail_item mb;
  REQUIRE(codec::decode(codec::encode(m), mb));
  CHECK(mb.sender == "oid-ada");
  CHECK(mb.attempts == 2);
  CHECK(mb.failed);
  CHECK(mb.last_error == m.last_error);

  signin_state_record st;
  st.purpose = "consent";
  st.nonce = "n";
  st.o365_tenant = "tid";
  st.who.tenant = "tid";
  st.who.user = "oid";
  st.who.email = "ada@contoso.example";
  st.who.is_admin = true;
  st.expires_ms = 99;
  st.invite_token = "tok";
  st.browser = "cookie-hash";
  signin_state_record sb;
  REQUIRE(codec::decode(codec::encode(st), sb));
  CHECK(sb.purpose == "consent");
  CHECK(sb.who.is_admin);
  CHECK(sb.who.email == "ada@contoso.example");
  CHECK(sb.invite_token == "tok");
  CHECK(sb.browser == "cookie-hash");

  o365_session_record sess;
  sess.who = st.who;
  sess.expires_ms = 5;
  o365_session_record sessb;
  REQUIRE(codec::decode(codec::encode(sess), sessb));
  CHECK(sessb.who.user == "oid");
  CHECK(sessb.expires_ms == 5);
  // Kinds are not interchangeable.
  CHECK_FALSE(codec::decode(codec::encode(sess), sb));
  CHECK_FALSE(codec::decode(codec::encode(inv), jb));
}

TEST_CASE("a deactivated user round-trips, older users are active",
          "[storage][codec][lifecycle]") {
  user_record u;
  u.id = user_id{5};
  u.org = tenant_id{6};
  u.email = "gone@acme.example";
  u.view_all_events = true;
  u.deactivated = true;
  auto bytes = codec::encode(u);
  user_record ub;
  REQUIRE(codec::decode(bytes, ub));
  CHECK(ub.deactivated);
  CHECK(ub.view_all_events);
  user_record old;
  old.deactivated = true;
  // (Four bytes of made tokens, sign-in times and password setup follow.)
  REQUIRE(codec::decode(bytes.substr(0, bytes.size() - 5), old));
  CHECK_FALSE(old.deactivated);
  CHECK(old.view_all_events);
  auto bad = bytes;
  bad[bad.size() - 5] = '\x02';
  CHECK_FALSE(codec::decode(bad, old));
}

TEST_CASE("the View All Events permission round-trips, older users lack it",
          "[storage][codec][permissions]") {
  user_record u;
  u.id = user_id{5};
  u.org = tenant_id{6};
  u.email = "viewer@acme.example";
  u.manage_users = true;
  u.view_all_events = true;
  u.o365_user = "a0000000-0000-4000-8000-000000000001";
  auto bytes = codec::encode(u);
  user_record ub;
  REQUIRE(codec::decode(bytes, ub));
  CHECK(ub.view_all_events);
  CHECK(ub.manage_users);
  CHECK(ub.o365_user == u.o365_user);
  // A user stored before the permission existed ends after its sign-in
  // tokens: it reads back without it (off), everything else intact.
  user_record old;
  old.view_all_events = true;
  // (The deactivation flag and four more bytes came later still.)
  REQUIRE(codec::decode(bytes.substr(0, bytes.size() - 6), old));
  CHECK_FALSE(old.view_all_events);
  CHECK(old.manage_users);
  CHECK(old.o365_user == u.o365_user);
  // Anything but 0 or 1 in its place is damage.
  auto bad = bytes;
  bad[bad.size() - 6] = '\x02';
  CHECK_FALSE(codec::decode(bad, old));
  // ... and so is a byte after it.
  CHECK_FALSE(codec::decode(bytes + '\x00', old));
}

TEST_CASE("made tokens, sign-in times and a password setup round-trip, older "
          "users have none",
          "[storage][codec][lifecycle][tokens]") {
  user_record u;
  u.id = user_id{5};
  u.org = tenant_id{6};
  u.email = "t@acme.example";
  u.modified_ms = 1000;
  u.api_tokens = {{"ci", std::string(64, 'c'), 10, 20},
                  {"cron", std::string(64, 'd'), 11, 0}};
  u.signin_token_hashes = {std::string(64, 'e')};
  u.signin_issued_ms = {500};
  u.setup_token_hash = std::string(64, 'f');
  u.setup_expires_ms = 9000;
  auto bytes = codec::encode(u);
  user_record ub;
  REQUIRE(codec::decode(bytes, ub));
  REQUIRE(ub.api_tokens.size() == 2);
  CHECK(ub.api_tokens[0].name == "ci");
  CHECK(ub.api_tokens[0].expires_ms == 20);
  CHECK(ub.api_tokens[1].hash == std::string(64, 'd'));
  CHECK(ub.signin_issued_ms == std::vector<int64_t>{500});
  CHECK(ub.setup_token_hash == std::string(64, 'f'));
  CHECK(ub.setup_expires_ms == 9000);
  // Validity: a made token until its expiry, a sign-in token for the TTL.
  CHECK(ub.token_valid(std::string(64, 'c'), 19, 100));
  CHECK_FALSE(ub.token_valid(std::string(64, 'c'), 20, 100));
  CHECK(ub.token_valid(std::string(64, 'd'), 1'000'000, 100));
  CHECK(ub.token_valid(std::string(64, 'e'), 599, 100));
  CHECK_FALSE(ub.token_valid(std::string(64, 'e'), 600, 100));
  // A value of before ends after the deactivation byte: no tokens made,
  // and a sign-in token counts from the user's last change.
  u.api_tokens.clear();
  u.signin_issued_ms.clear();
  u.setup_token_hash.clear();
  u.setup_expires_ms = 0;
  auto plain = codec::encode(u);
  user_record old;
  REQUIRE(codec::decode(plain.substr(0, plain.size() - 4), old));
  CHECK(old.api_tokens.empty());
  CHECK(old.signin_issued(0) == 1000);
  CHECK(old.token_valid(std::string(64, 'e'), 1099, 100));
  CHECK_FALSE(old.token_valid(std::string(64, 'e'), 1100, 100));
}
