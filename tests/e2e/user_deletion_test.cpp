// End-to-end: deleting a user (issue 14, user lifecycle). Only a
// deactivated user is deleted, with every row of theirs (events, sync rows,
// global e-mail and id lookups) while the rest of the organization stays;
// the super administrator never is, administrators only by administrators,
// and every refusal leaves the user and their data as they were.
//
// What is stored is read from the node's RocksDB once the node is stopped.
// Reminder rows (node-local durable timers) are planted while it is
// stopped: a node without Office 365 runs no reminders actor, so they stay
// as planted until the deletion.
#include <catch2/catch.hpp>

#include "storage/db.hpp"
#include "storage/keys.hpp"
#include "storage/reminder_rows.hpp"
#include "tests/support/api_client.hpp"

using namespace crmsync::e2e;
namespace storage = crmsync::storage;
namespace keys = crmsync::storage::keys;
using crmsync::tenant_id;
using crmsync::user_id;

namespace {

struct acme_staff : acme_fixture {
  user_info admin
      = create_user(api, org.admin_token, org.id, "alice@acme.example", "Alice",
                    "administrator", true);
  user_info manager
      = create_user(api, org.admin_token, org.id, "mark@acme.example", "Mark",
                    "standard", true);
  user_info carol = create_user(api, org.admin_token, org.id,
                                "carol@acme.example", "Carol");

  std::string path(const std::string& id) {
    return user_path(org.id, id);
  }

  void deactivate(const std::string& id) {
    auto r = api.post(org.admin_token, path(id) + "/deactivate", "");
    E2E_REQUIRE_STATUS(r, 200);
  }

  /// The user and their first events page, as the super administrator
  /// reads them.
  std::string snapshot(const std::string& id) {
    auto u = api.get(org.admin_token, path(id));
    auto e = api.get(org.admin_token, user_events_path(org.id, id));
    return std::to_string(u.status) + u.body + std::to_string(e.status)
           + e.body;
  }

  void require_refused(const api_response& r, int status, std::string_view code,
                       const std::string& id, const std::string& before) {
    INFO(r.describe());
    CHECK(r.status == status);
    CHECK(r.error_code() == code);
    CHECK(snapshot(id) == before);
  }
};

size_t rows_under(const storage::db& db, storage::column cf,
                  const std::string& prefix) {
  size_t n = 0;
  db.scan(cf, prefix, keys::prefix_end(prefix),
          [&](std::string_view, std::string_view) {
            ++n;
            return true;
          });
  return n;
}

bool has_row(const storage::db& db, storage::column cf,
             const std::string& key) {
  std::string v;
  bool found = false;
  db.get(cf, key, v, found);
  return found;
}

} // namespace

TEST_CASE_METHOD(acme_staff,
                 "deletion: a deactivated user goes with all their data",
                 "[e2e][lifecycle][deletion]") {
  auto body
      = event_body("Call", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z");
  auto e1 = create_event(api, org.id, carol, body);
  auto e2 = create_event(
      api, org.id, carol,
      event_body("Visit", "2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z"));
  auto kept = create_event(api, org, body);
  // A sync request row of Carol's (sync asked off).
  auto off = api.put(carol.token, path(carol.id) + "/calendar-sync",
                     R"({"enabled":false})");
  E2E_REQUIRE_STATUS(off, 200);
  auto before_org = api.get(org.admin_token, org_path(org.id));
  E2E_REQUIRE_STATUS(before_org, 200);
  deactivate(carol.id);
  // A manager (Manage Users, not an administrator) deletes a standard user.
  auto r = api.del(manager.token, path(carol.id));
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.str("/deleted/email") == "carol@acme.example");
  CHECK(r.i64("/events_deleted") == 2);
  // Gone from the API...
  CHECK(api.get(org.admin_token, path(carol.id)).status == 404);
  CHECK(api.get(org.admin_token, event_path(org.id, e1.str("/id"))).status
        == 404);
  CHECK(api.get(org.admin_token, event_path(org.id, e2.str("/id"))).status
        == 404);
  // ...the rest of the organization stays, its counts follow...
  CHECK(api.get(org.admin_token, event_path(org.id, kept.str("/id"))).status
        == 200);
  auto after_org = api.get(org.admin_token, org_path(org.id));
  E2E_REQUIRE_STATUS(after_org, 200);
  CHECK(after_org.i64("/users") == before_org.i64("/users") - 1);
  // ...the audit log says who did it...
  auto audit = api.get(org.admin_token, org_path(org.id) + "/audit");
  CHECK(audit.body.find("user.deleted") != std::string::npos);
  CHECK(audit.body.find("carol@acme.example") != std::string::npos);
  // ...and the address is free for a new user.
  auto again = create_user(api, org.admin_token, org.id, "carol@acme.example",
                           "Carol again");
  CHECK(again.id != carol.id);
  // No row of Carol's is left.
  REQUIRE(node.stop() == 0);
  storage::db_options o;
  o.path = node.data_dir() + "/rocksdb";
  auto opened = storage::db::open(o);
  REQUIRE(opened);
  auto& db = **opened;
  auto t = *tenant_id::parse(org.id);
  auto u = *user_id::parse(carol.id);
  CHECK_FALSE(has_row(db, storage::column::users, keys::user(t, u)));
  CHECK_FALSE(has_row(db, storage::column::lookup, keys::user_lookup(u)));
  CHECK(
      rows_under(db, storage::column::event_index, keys::events_of_owner(t, u))
      == 0);
  for (auto* e : {&e1, &e2})
    CHECK_FALSE(
        has_row(db, storage::column::events,
                keys::event(t, *crmsync::event_id::parse(e->str("/id")))));
  for (auto cf : {storage::column::sync, storage::column::links,
                  storage::column::sync_outbox, storage::column::inbox})
    CHECK(rows_under(db, cf, keys::of_user(t, u)) == 0);
  // The address's lookup names the new user, not Carol.
  std::string v;
  bool found = false;
  db.get(storage::column::lookup, keys::email_lookup("carol@acme.example"), v,
         found);
  REQUIRE(found);
  CHECK(v == keys::tenant_user_value(t, *user_id::parse(again.id)));
}

TEST_CASE_METHOD(acme_staff, "deletion: refusals keep the user and their data",
                 "[e2e][lifecycle][deletion][authz]") {
  create_event(
      api, org.id, carol,
      event_body("Call", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"));
  SECTION("an active user is deactivated first") {
    auto before = snapshot(carol.id);
    require_refused(api.del(org.admin_token, path(carol.id)), 409,
                    "user_active", carol.id, before);
    CHECK(api.get(carol.token, path(carol.id)).status == 200);
  }
  SECTION("without Manage Users nobody is deleted") {
    deactivate(carol.id);
    auto before = snapshot(carol.id);
    auto dave = create_user(api, org.admin_token, org.id, "dave@acme.example",
                            "Dave");
    require_refused(api.del(dave.token, path(carol.id)), 403, "forbidden",
                    carol.id, before);
  }
  SECTION("a manager does not delete an administrator") {
    deactivate(admin.id);
    auto before = snapshot(admin.id);
    require_refused(api.del(manager.token, path(admin.id)), 403,
                    "administrator_required", admin.id, before);
    // An administrator does.
    E2E_REQUIRE_STATUS(api.del(org.admin_token, path(admin.id)), 200);
  }
  SECTION("the super administrator is never deleted") {
    auto before = snapshot(org.admin_id);
    require_refused(api.del(admin.token, path(org.admin_id)), 409,
                    "super_admin_protected", org.admin_id, before);
    require_refused(api.del(admin_token, path(org.admin_id)), 409,
                    "super_admin_protected", org.admin_id, before);
  }
  SECTION("another organization cannot reach the user") {
    deactivate(carol.id);
    auto before = snapshot(carol.id);
    auto other = create_org(api, "Globex", "boss@globex.example");
    require_refused(api.del(other.admin_token, path(carol.id)), 404,
                    "not_found", carol.id, before);
    require_refused(api.del(other.admin_token, user_path(other.id, carol.id)),
                    404, "not_found", carol.id, before);
  }
  SECTION("'me' names the caller, who is active") {
    auto before = snapshot(manager.id);
    require_refused(api.del(manager.token, path("me")), 409, "user_active",
                    manager.id, before);
    // The service admin is nobody's user.
    auto r = api.del(admin_token, path("me"));
    INFO(r.describe());
    CHECK(r.status == 400);
    // PATCH and deactivate read 'me' the same way.
    auto renamed = api.patch(manager.token, path("me"), R"({"name":"M."})");
    E2E_REQUIRE_STATUS(renamed, 200);
    CHECK(renamed.str("/id") == manager.id);
    auto self_off = api.post(manager.token, path("me") + "/deactivate", "");
    INFO(self_off.describe());
    CHECK(self_off.error_code() == "cannot_deactivate_self");
  }
  SECTION("a bad token or a deleted user's token is refused") {
    deactivate(carol.id);
    auto before = snapshot(carol.id);
    require_refused(api.del("crm_nonsense", path(carol.id)), 401,
                    "unauthorized", carol.id, before);
    require_refused(api.del(carol.token, path(carol.id)), 401, "unauthorized",
                    carol.id, before);
    E2E_REQUIRE_STATUS(api.del(org.admin_token, path(carol.id)), 200);
    auto twice = api.del(org.admin_token, path(carol.id));
    INFO(twice.describe());
    CHECK(twice.status == 404);
  }
}

namespace {

/// Plants the reminders of `kind` for `user`'s calendar and mailbox.
void plant_reminders(storage::db& db, tenant_id t, user_id u) {
  storage::write_batch b;
  int64_t due = 4102444800000; // 2100-01-01: never due in a test
  for (auto target :
       {crmsync::entity_kind::calendar, crmsync::entity_kind::mailbox})
    for (auto kind : {crmsync::reminder_kind::reconcile,
                      crmsync::reminder_kind::renew_subscription}) {
      crmsync::reminder r;
      r.target = crmsync::entity_key{target, t, u};
      r.kind = kind;
      r.due_ms = due++;
      r.period_ms = 60000;
      storage::reminder_rows::put(b, r, std::nullopt);
    }
  REQUIRE_FALSE(db.write(b));
}

size_t reminder_rows_of(const storage::db& db, tenant_id t, user_id u) {
  size_t n = 0;
  for (auto target :
       {crmsync::entity_kind::calendar, crmsync::entity_kind::mailbox})
    for (auto kind : {crmsync::reminder_kind::reconcile,
                      crmsync::reminder_kind::renew_subscription}) {
      std::optional<int64_t> due;
      REQUIRE_FALSE(storage::reminder_rows::find(
          db, crmsync::entity_key{target, t, u}, kind, due));
      n += due ? 1 : 0;
    }
  return n;
}

} // namespace

TEST_CASE_METHOD(
    acme_staff, "deletion: the user's reminder rows go with them, others' stay",
    "[e2e][lifecycle][deletion]") {
  auto t = *tenant_id::parse(org.id);
  auto c = *user_id::parse(carol.id);
  auto m = *user_id::parse(manager.id);
  deactivate(carol.id);
  REQUIRE(node.stop() == 0);
  storage::db_options o;
  o.path = node.data_dir() + "/rocksdb";
  {
    auto opened = storage::db::open(o);
    REQUIRE(opened);
    plant_reminders(**opened, t, c);
    plant_reminders(**opened, t, m);
    CHECK(rows_under(**opened, storage::column::reminders, "") == 16);
  }
  node.start();
  auto r = node.api().del(manager.token, path(carol.id));
  E2E_REQUIRE_STATUS(r, 200);
  REQUIRE(node.stop() == 0);
  auto opened = storage::db::open(o);
  REQUIRE(opened);
  auto& db = **opened;
  CHECK(reminder_rows_of(db, t, c) == 0);
  CHECK(reminder_rows_of(db, t, m) == 4);
  // Due rows and index rows alike: only Mark's eight are left.
  CHECK(rows_under(db, storage::column::reminders, "") == 8);
}
