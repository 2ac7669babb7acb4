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
  return e;
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
         && a.modified_ms == b.modified_ms;
}

} // namespace

TEST_CASE("events round-trip through the codec", "[storage][codec]") {
  auto e = sample_event();
  event_record back;
  REQUIRE(codec::decode(codec::encode(e), back));
  CHECK(same(e, back));
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
  c.state = "active";
  c.done = 10;
  c.total = 20;
  c.office365_calendar_id = "AAMk";
  calendar_status cb;
  REQUIRE(codec::decode(codec::encode(c), cb));
  CHECK(cb.state == "active");
  CHECK(cb.done == 10);
  CHECK(cb.office365_calendar_id == "AAMk");
  mailbox_status m;
  m.office365_linked = true;
  m.office365_user_id = "oid";
  mailbox_status mb;
  REQUIRE(codec::decode(codec::encode(m), mb));
  CHECK(mb.office365_linked);
  CHECK(mb.office365_user_id == "oid");
}

TEST_CASE("damaged values are refused, never misread", "[storage][codec]") {
  auto bytes = codec::encode(sample_event());
  event_record out;
  // Every truncation fails.
  for (size_t n = 0; n < bytes.size(); ++n)
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
