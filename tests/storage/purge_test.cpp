#include "storage/purge.hpp"

#include <catch2/catch.hpp>

#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync;
using crmsync::storage::column;
namespace keys = crmsync::storage::keys;
namespace codec = crmsync::storage::codec;

namespace {

constexpr int64_t now = 10'000'000;
constexpr int64_t day = 86'400'000;

std::unique_ptr<storage::db> open_at(const std::string& path) {
  storage::db_options o;
  o.path = path;
  auto r = storage::db::open(o);
  REQUIRE(r);
  return std::move(*r);
}

bool has(storage::db& d, column c, const std::string& k) {
  std::string v;
  bool found = false;
  REQUIRE_FALSE(d.get(c, k, v, found));
  return found;
}

void put(storage::db& d, column c, std::string k, std::string v) {
  storage::write_batch b;
  b.put(c, std::move(k), std::move(v));
  REQUIRE_FALSE(d.write(b));
}

std::string state(int64_t expires, std::string invite_token = {}) {
  signin_state_record rec;
  rec.purpose = "signin";
  rec.nonce = "n";
  rec.expires_ms = expires;
  rec.invite_token = std::move(invite_token);
  return codec::encode(rec);
}

std::string session(int64_t expires) {
  o365_session_record rec;
  rec.who.tenant = "t";
  rec.who.user = "u";
  rec.expires_ms = expires;
  return codec::encode(rec);
}

/// Stores an invite and its token lookup; returns its key.
std::string invite(storage::db& d, uint64_t id, invite_status status,
                   int64_t expires, int64_t resolved) {
  invite_record inv;
  inv.id = id;
  inv.org = tenant_id{7};
  inv.token_hash = "hash" + std::to_string(id);
  inv.status = status;
  inv.created_ms = 1;
  inv.expires_ms = expires;
  inv.resolved_ms = resolved;
  auto k = keys::tenant_item(inv.org, id);
  put(d, column::invites, k, codec::encode(inv));
  put(d, column::lookup, keys::invite_token_lookup(inv.token_hash), k);
  return k;
}

std::string mail(storage::db& d, uint64_t id, bool failed, int64_t created) {
  mail_item m;
  m.id = id;
  m.org = tenant_id{7};
  m.to = "x@example.com";
  m.failed = failed;
  m.created_ms = created;
  auto k = keys::tenant_item(m.org, id);
  put(d, column::outbox, k, codec::encode(m));
  return k;
}

/// A browser's page session row (api/sessions.hpp): big-endian expiry,
/// then what it stands for.
std::string page_session(int64_t expires_ms) {
  std::string v;
  keys::put_be64(v, static_cast<uint64_t>(expires_ms));
  return v + "{}";
}

} // namespace

TEST_CASE("purge deletes expired browser page sessions", "[storage][purge]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  put(*d, column::sessions, keys::page_session("old"), page_session(now - 1));
  put(*d, column::sessions, keys::page_session("due"), page_session(now));
  put(*d, column::sessions, keys::page_session("live"), page_session(now + 1));
  put(*d, column::sessions, keys::page_session("short"), "xy");
  storage::purge_counts n;
  REQUIRE_FALSE(storage::purge_expired(*d, {}, now, n));
  CHECK(n.sessions == 2);
  CHECK_FALSE(has(*d, column::sessions, keys::page_session("old")));
  CHECK_FALSE(has(*d, column::sessions, keys::page_session("due")));
  CHECK(has(*d, column::sessions, keys::page_session("live")));
  CHECK(has(*d, column::sessions, keys::page_session("short")));
}

TEST_CASE("purge deletes expired sign-in states and sessions only",
          "[storage][purge]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  put(*d, column::sessions, keys::signin_state("old"),
      state(now - 1, std::string(16000, 'x')));
  put(*d, column::sessions, keys::signin_state("due"), state(now));
  put(*d, column::sessions, keys::signin_state("live"), state(now + 1));
  put(*d, column::sessions, keys::o365_session("old"), session(now - day));
  put(*d, column::sessions, keys::o365_session("live"), session(now + day));
  put(*d, column::sessions, keys::signin_state("garbage"), "not a record");
  storage::purge_counts n;
  REQUIRE_FALSE(storage::purge_expired(*d, {}, now, n));
  CHECK(n.signin_states == 2);
  CHECK(n.sessions == 1);
  CHECK(n.invites == 0);
  CHECK(n.outbox == 0);
  CHECK_FALSE(has(*d, column::sessions, keys::signin_state("old")));
  CHECK_FALSE(has(*d, column::sessions, keys::signin_state("due")));
  CHECK(has(*d, column::sessions, keys::signin_state("live")));
  CHECK_FALSE(has(*d, column::sessions, keys::o365_session("old")));
  CHECK(has(*d, column::sessions, keys::o365_session("live")));
  CHECK(has(*d, column::sessions, keys::signin_state("garbage")));
  // A second pass finds nothing more.
  storage::purge_counts again;
  REQUIRE_FALSE(storage::purge_expired(*d, {}, now, again));
  CHECK(again.signin_states + again.sessions == 0);
}

TEST_CASE("purge keeps invitations and failed mail for their retention",
          "[storage][purge]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  storage::purge_policy p;
  p.invite_retention_ms = 30 * day;
  p.failed_mail_retention_ms = 10 * day;
  p.batch_rows = 2; // several batches
  auto used_long_ago
      = invite(*d, 1, invite_status::accepted, now + day, now - 31 * day);
  auto used_lately
      = invite(*d, 2, invite_status::associated, now + day, now - 29 * day);
  auto superseded
      = invite(*d, 3, invite_status::superseded, now + day, now - 30 * day);
  auto expired_long_ago
      = invite(*d, 4, invite_status::pending, now - 40 * day, 0);
  auto expired_lately = invite(*d, 5, invite_status::pending, now - day, 0);
  auto pending = invite(*d, 6, invite_status::pending, now + day, 0);
  auto failed_old = mail(*d, 1, true, now - 11 * day);
  auto failed_new = mail(*d, 2, true, now - 9 * day);
  auto queued_old = mail(*d, 3, false, now - 100 * day);
  storage::purge_counts n;
  REQUIRE_FALSE(storage::purge_expired(*d, p, now, n));
  CHECK(n.invites == 3);
  CHECK(n.outbox == 1);
  CHECK_FALSE(has(*d, column::invites, used_long_ago));
  CHECK_FALSE(has(*d, column::lookup, keys::invite_token_lookup("hash1")));
  CHECK_FALSE(has(*d, column::invites, superseded));
  CHECK_FALSE(has(*d, column::lookup, keys::invite_token_lookup("hash3")));
  CHECK_FALSE(has(*d, column::invites, expired_long_ago));
  CHECK_FALSE(has(*d, column::lookup, keys::invite_token_lookup("hash4")));
  CHECK(has(*d, column::invites, used_lately));
  CHECK(has(*d, column::lookup, keys::invite_token_lookup("hash2")));
  CHECK(has(*d, column::invites, expired_lately));
  CHECK(has(*d, column::invites, pending));
  CHECK(has(*d, column::lookup, keys::invite_token_lookup("hash6")));
  CHECK_FALSE(has(*d, column::outbox, failed_old));
  CHECK(has(*d, column::outbox, failed_new));
  // Mail still being tried is never purged, however old.
  CHECK(has(*d, column::outbox, queued_old));
}

TEST_CASE("a pass taken in steps of a few rows deletes what a whole pass "
          "does, reading at most that many rows per step",
          "[storage][purge]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  storage::purge_policy p;
  p.invite_retention_ms = 30 * day;
  p.failed_mail_retention_ms = 10 * day;
  for (int i = 0; i < 10; ++i) {
    auto n = std::to_string(i);
    put(*d, column::sessions, keys::signin_state("s" + n),
        state(i % 2 ? now - 1 : now + 1));
    put(*d, column::sessions, keys::o365_session("p" + n),
        session(i % 3 ? now + day : now - day));
  }
  for (uint64_t i = 1; i <= 7; ++i)
    invite(*d, i, invite_status::pending, i % 2 ? now - 40 * day : now + day,
           0);
  for (uint64_t i = 1; i <= 5; ++i)
    mail(*d, i, true, i <= 2 ? now - 11 * day : now - day);
  // 20 session rows, 7 invitations, 5 e-mails: 32 rows, 3 a step, so at
  // least 11 steps, each reading 3 rows or ending a family.
  storage::purge_cursor at;
  storage::purge_counts n;
  size_t steps = 0;
  while (!at.done()) {
    REQUIRE(steps < 100);
    auto before = at;
    REQUIRE_FALSE(storage::purge_step(*d, p, now, n, at, 3));
    ++steps;
    CHECK((at.stage != before.stage || at.next != before.next));
  }
  CHECK(steps >= 11);
  CHECK(n.signin_states == 5);
  CHECK(n.sessions == 4); // p0, p3, p6, p9
  CHECK(n.invites == 4);  // 1, 3, 5, 7
  CHECK(n.outbox == 2);
  CHECK(has(*d, column::sessions, keys::signin_state("s0")));
  CHECK_FALSE(has(*d, column::sessions, keys::signin_state("s1")));
  CHECK(has(*d, column::sessions, keys::o365_session("p1")));
  CHECK_FALSE(has(*d, column::sessions, keys::o365_session("p9")));
  // A whole pass afterwards finds nothing left.
  storage::purge_counts again;
  REQUIRE_FALSE(storage::purge_expired(*d, p, now, again));
  CHECK(again.signin_states + again.sessions + again.invites + again.outbox
        == 0);
}
