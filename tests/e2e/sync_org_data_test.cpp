// End-to-end: an organization's data as a whole (issue 14, "Uninstall and
// data") against real processes: disconnecting Office 365 (the CRM
// calendars leave Office 365, the CRM data stays, the app can be installed
// again), exporting an organization as JSON lines without secrets, and
// deleting it with every row, the node's audit entry kept.
#include <catch2/catch.hpp>

#include <thread>

#include "common/crypto.hpp"
#include "storage/codec.hpp"
#include "storage/db.hpp"
#include "storage/keys.hpp"
#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

namespace {

std::string disconnect_path(std::string_view org) {
  return org_path(org) + "/office365/disconnect";
}

std::string admin_org_path(std::string_view org) {
  return "/admin/v1/orgs/" + std::string{org};
}

/// The lines of a JSON-lines body.
std::vector<std::string> lines_of(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream in{body};
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      out.push_back(line);
  return out;
}

size_t count_kind(const std::vector<std::string>& lines,
                  std::string_view kind) {
  auto tag = "{\"kind\":\"" + std::string{kind} + "\"";
  size_t n = 0;
  for (auto& l : lines)
    if (l.rfind(tag, 0) == 0)
      ++n;
  return n;
}

uint64_t rows_of(api_client& node, std::string_view org) {
  auto r = node.get(admin_token, admin_org_path(org) + "/rows");
  E2E_REQUIRE_STATUS(r, 200);
  INFO(r.body);
  return r.u64("/rows");
}

} // namespace

TEST_CASE("disconnecting Office 365 removes the CRM calendars from Office "
          "365, keeps the CRM data, and the app can be installed again",
          "[sync][R20][org_data]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto org = env.org();
  auto kept = env.create_event("Kept after disconnect", hours_from_now(3),
                               hours_from_now(4));
  env.enable_and_wait();
  REQUIRE_FALSE(env.crm_calendar_id().empty());
  auto bob = env.join("bob@contoso.com");

  SECTION("only an administrator of the organization disconnects it") {
    auto as_bob = env.node().post(bob.token, disconnect_path(org.id), "");
    CHECK(as_bob.status == 403);
    CHECK(env.node().post("", disconnect_path(org.id), "").status == 401);
    auto other = create_org(env.node(), "Other", "boss@other.example");
    auto foreign
        = env.node().post(other.admin_token, disconnect_path(org.id), "");
    CHECK(foreign.status == 404);
    // Still linked and syncing.
    CHECK(env.status().str("/state") == "active");
    CHECK_FALSE(env.crm_calendar_id().empty());
  }

  SECTION("the administrator disconnects, then installs again") {
    // Carol asks to join before the disconnect.
    auto carol = env.o365().session_of("carol@contoso.com");
    auto request = env.node().post(carol, "/api/v1/join-requests", "{}");
    E2E_REQUIRE_STATUS(request, 201);
    auto approve = org_path(org.id) + "/join-requests/" + request.str("/id")
                   + "/approve";
    auto off = env.node().post(org.token, disconnect_path(org.id), "");
    E2E_REQUIRE_STATUS(off, 200);
    CHECK(off.str("/status") == "disconnected");
    CHECK(off.is_null("/organization/office365_tenant_id"));
    // R20 for everyone: the CRM calendar and its subscription leave Office
    // 365; the CRM events stay.
    env.wait_for_state("disabled");
    CHECK(env.crm_calendar_id().empty());
    CHECK(env.get_event(kept).title == "Kept after disconnect");
    auto audit = env.o365().audit_actions(org.id, org.token);
    CHECK(std::count(audit.begin(), audit.end(), "office365.disconnected")
          == 1);
    // Nothing is linked any more: a second disconnect, sync and Bob's
    // Office 365 link all say so.
    auto again = env.node().post(org.token, disconnect_path(org.id), "");
    CHECK(again.status == 409);
    CHECK(again.error_code() == "office365_not_installed");
    auto sync = env.put_sync(org.token, org.admin_id, true);
    CHECK(sync.status == 409);
    CHECK(sync.error_code() == "office365_not_linked");
    auto approved = env.node().post(org.token, approve, "{}");
    CHECK(approved.status == 409);
    CHECK(approved.error_code() == "office365_not_installed");
    auto bob_user = env.node().get(org.token, user_path(org.id, bob.id));
    E2E_REQUIRE_STATUS(bob_user, 200);
    CHECK(bob_user.is_null("/office365_user_id"));

    // Installed again by the tenant's admin: the same organization, linked
    // again, and sync works as before.
    auto back = env.o365().install("admin@contoso.com");
    CHECK(back.answer.str("/organization/id") == org.id);
    auto o = env.node().get(org.token, org_path(org.id));
    E2E_REQUIRE_STATUS(o, 200);
    CHECK(o.str("/office365_tenant_id") == env.o365().tenant());
    env.enable_and_wait();
    CHECK_FALSE(env.crm_calendar_id().empty());
    env.wait_in_sync();
    // Linked again, the request waiting since can be approved.
    CHECK(env.node().post(org.token, approve, "{}").status == 200);
  }
}

TEST_CASE("an organization is exported without secrets and deleted with "
          "every row, the node keeps who deleted it",
          "[sync][org_data]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto org = env.org();
  env.create_event("Exported event", hours_from_now(3), hours_from_now(4));
  env.enable_and_wait();
  auto bob = env.join("bob@contoso.com");
  auto sub = env.subscription();
  REQUIRE_FALSE(sub.client_state.empty());
  auto other = create_org(env.node(), "Bystander", "someone@bystander.example");
  auto other_rows = rows_of(env.node(), other.id);
  REQUIRE(other_rows > 0);

  SECTION("export: JSON lines of the records, no token, hash or secret") {
    CHECK(env.node().get(org.token, admin_org_path(org.id) + "/export").status
          == 403);
    CHECK(env.node().get(bob.token, admin_org_path(org.id) + "/export").status
          == 403);
    CHECK(env.node().get("", admin_org_path(org.id) + "/export").status == 401);
    CHECK(env.node()
              .get(admin_token, admin_org_path("0123456789abcdef") + "/export")
              .status
          == 404);
    // The organization's administrators export it through the REST API.
    auto rest = org_path(org.id) + "/export";
    CHECK(env.node().get(bob.token, rest).status == 403);
    CHECK(env.node().get(other.admin_token, rest).status == 404);
    auto by_admin = env.node().get(org.token, rest);
    E2E_REQUIRE_STATUS(by_admin, 200);
    CHECK(lines_of(by_admin.body).size() > 4);
    auto out = env.node().get(admin_token, admin_org_path(org.id) + "/export");
    E2E_REQUIRE_STATUS(out, 200);
    CHECK(out.header("content-type").rfind("application/x-ndjson", 0) == 0);
    CHECK(out.header("transfer-encoding") == "chunked");
    auto lines = lines_of(out.body);
    REQUIRE(lines.size() > 4);
    CHECK(lines.front().rfind("{\"kind\":\"export\"", 0) == 0);
    CHECK(lines.back().rfind("{\"kind\":\"end\"", 0) == 0);
    CHECK(count_kind(lines, "organization") == 1);
    CHECK(count_kind(lines, "user") == 2);
    CHECK(count_kind(lines, "event") == 1);
    CHECK(count_kind(lines, "calendar_sync") >= 1);
    CHECK(count_kind(lines, "join_request") == 1);
    CHECK(count_kind(lines, "audit") >= 1);
    CHECK(count_kind(lines, "unreadable") == 0);
    CHECK(out.body.find("Exported event") != std::string::npos);
    CHECK(out.body.find("bob@contoso.com") != std::string::npos);
    // Not the bystander's.
    CHECK(out.body.find("bystander") == std::string::npos);
    // No secret, in clear or hashed.
    for (auto& token : {org.token, bob.token}) {
      CHECK(out.body.find(token) == std::string::npos);
      CHECK(out.body.find(crmsync::crypto::sha256_hex(token))
            == std::string::npos);
    }
    CHECK(out.body.find(sub.client_state) == std::string::npos);
    CHECK(out.body.find("token_hash") == std::string::npos);
    CHECK(out.body.find("password_hash") == std::string::npos);
    CHECK(out.body.find("client_state") == std::string::npos);
  }

  SECTION("delete: refusals leave everything as it was") {
    auto before = rows_of(env.node(), org.id);
    auto path = admin_org_path(org.id);
    CHECK(env.node().del(org.token, path + "?confirm=" + org.id).status == 403);
    CHECK(env.node().del("", path + "?confirm=" + org.id).status == 401);
    auto none = env.node().del(admin_token, path);
    CHECK(none.status == 400);
    CHECK(none.error_code() == "confirmation_required");
    auto wrong = env.node().del(admin_token, path + "?confirm=" + other.id);
    CHECK(wrong.status == 400);
    CHECK(wrong.error_code() == "confirmation_mismatch");
    CHECK(env.node()
              .del(admin_token, admin_org_path("0123456789abcdef")
                                    + "?confirm=0123456789abcdef")
              .status
          == 404);
    CHECK(rows_of(env.node(), org.id) == before);
    CHECK(env.status().str("/state") == "active");
  }

  SECTION("delete: the calendar leaves Office 365, every row goes, the "
          "addresses are free again, and a restart changes nothing") {
    auto gone = env.node().del(admin_token,
                               admin_org_path(org.id) + "?confirm=contoso.com");
    E2E_REQUIRE_STATUS(gone, 200);
    CHECK(gone.str("/status") == "deleted");
    CHECK(gone.str("/office365_teardown") == "complete");
    CHECK(gone.u64("/rows") > 10);
    CHECK(env.crm_calendar_id().empty());
    CHECK(rows_of(env.node(), org.id) == 0);
    CHECK(rows_of(env.node(), other.id) == other_rows);
    auto as_admin = env.node().get(admin_token, org_path(org.id));
    CHECK(as_admin.status == 404);
    CHECK(env.node().get(org.token, org_path(org.id)).status == 401);
    CHECK(env.node().get(admin_token, admin_org_path(org.id) + "/export").status
          == 404);
    auto audit = env.node().get(admin_token, "/admin/v1/audit");
    E2E_REQUIRE_STATUS(audit, 200);
    CHECK(audit.str("/items/0/action") == "org.deleted");
    CHECK(audit.str("/items/0/actor") == "service-admin");
    CHECK(audit.str("/items/0/detail").find(org.id) != std::string::npos);
    // The users' addresses can be used again.
    auto reused = create_org(env.node(), "Contoso again", "admin@contoso.com");
    CHECK_FALSE(reused.id.empty());
    CHECK(reused.id != org.id);

    env.restart_node();
    CHECK(rows_of(env.node(), org.id) == 0);
    CHECK(env.node().get(admin_token, org_path(org.id)).status == 404);
    auto kept = env.node().get(admin_token, "/admin/v1/audit");
    E2E_REQUIRE_STATUS(kept, 200);
    CHECK(kept.body.find("org.deleted") != std::string::npos);
    // Deleting it again finds nothing.
    CHECK(env.node()
              .del(admin_token, admin_org_path(org.id) + "?confirm=" + org.id)
              .status
          == 404);
  }
}

TEST_CASE("a deletion cut short leaves the organization closed, also after "
          "a restart, and deleting it again finishes it",
          "[sync][org_data]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto org = env.org();
  env.enable_and_wait();
  REQUIRE_FALSE(env.crm_calendar_id().empty());
  // Graph fails: the CRM calendar cannot leave Office 365, so the deletion
  // waits for it (up to 30 s) with the organization closed.
  env.set_faults(R"({"error_rate":1})");
  auto path = admin_org_path(org.id) + "?confirm=" + org.id;
  api_client deleter{env.node().port(), std::chrono::seconds(60)};
  std::thread t{[&] {
    api_response ignored;
    std::string err;
    deleter.try_request("DELETE", path, admin_token, {}, ignored, err);
  }};
  bool closed = crmsync::test::eventually([&] {
    return env.node().get(admin_token, org_path(org.id)).status == 404;
  });
  CHECK(closed);
  CHECK(env.node().get(org.token, org_path(org.id)).status == 401);
  // A second deletion while the first runs is refused at once, and the
  // node's audit names one deletion.
  auto second = env.node().del(admin_token, path);
  CHECK(second.status == 409);
  CHECK(second.error_code() == "org_closing");
  auto audit = env.node().get(admin_token, "/admin/v1/audit");
  E2E_REQUIRE_STATUS(audit, 200);
  size_t started = 0;
  for (size_t at = 0;
       (at = audit.body.find("\"org.delete\"", at)) != std::string::npos; ++at)
    ++started;
  CHECK(started == 1);
  // Killed half-way: the closed marker holds after the restart.
  env.kill9_and_start();
  t.join();
  CHECK(env.node().get(admin_token, org_path(org.id)).status == 404);
  CHECK(env.node().get(org.token, org_path(org.id)).status == 401);
  CHECK(rows_of(env.node(), org.id) > 0);

  env.set_faults(R"({"error_rate":0})");
  // The calendar leaves Office 365 now that Graph answers again.
  std::string seen;
  bool off = crmsync::test::eventually(
      [&] {
        auto s = env.node().get(admin_token,
                                "/admin/v1/users/" + org.admin_id + "/sync");
        seen = s.describe();
        return s.status == 200 && s.str("/state") == "disabled";
      },
      std::chrono::seconds(20));
  INFO(seen);
  // What the calendar actor is doing when it is not disabled in time.
  INFO(env.node()
           .get(admin_token, "/admin/v1/actors/calendar/" + org.admin_id)
           .body);
  CHECK(off);
  auto gone = env.node().del(admin_token, path);
  E2E_REQUIRE_STATUS(gone, 200);
  CHECK(gone.str("/office365_teardown") == "complete");
  CHECK(env.crm_calendar_id().empty());
  CHECK(rows_of(env.node(), org.id) == 0);
}

TEST_CASE("e-mail still queued when Office 365 is disconnected is never sent "
          "from the disconnected tenant",
          "[sync][R20][org_data]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto org = env.org();
  auto tenant = crmsync::tenant_id::parse(org.id);
  REQUIRE(tenant);
  // An invitation e-mail waiting in the outbox for its next attempt after
  // Graph refused the first (put there while the node is stopped, so that
  // it is not sent before the disconnect).
  env.o365().stop_node();
  {
    crmsync::storage::db_options o;
    o.path = env.o365().node_process().data_dir() + "/rocksdb";
    auto opened = crmsync::storage::db::open(o);
    REQUIRE(opened);
    crmsync::mail_item m;
    m.id = 77;
    m.org = *tenant;
    m.o365_tenant = env.o365().tenant();
    m.sender = env.o365().o365_id("admin@contoso.com");
    m.to = "carol@contoso.com";
    m.subject = "You are invited";
    m.html = "<p>hello</p>";
    m.attempts = 1;
    m.last_error = "503 ServiceUnavailable";
    m.created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
    m.next_attempt_ms = m.created_ms + 3'600'000;
    crmsync::storage::write_batch b;
    b.put(crmsync::storage::column::outbox,
          crmsync::storage::keys::tenant_item(*tenant, m.id),
          crmsync::storage::codec::encode(m));
    REQUIRE_FALSE((*opened)->write(b));
  }
  env.o365().start_node();
  auto off = env.node().post(org.token, disconnect_path(org.id), "");
  E2E_REQUIRE_STATUS(off, 200);
  // The disconnect gave the queued e-mail up, saying why, so the mailer
  // never sends it.
  env.o365().stop_node();
  auto queued = env.o365().outbox_of_stopped_node();
  REQUIRE(queued.size() == 1);
  CHECK(queued[0].to == "carol@contoso.com");
  CHECK(queued[0].failed);
  CHECK(queued[0].last_error == "Office 365 was disconnected");
  env.o365().start_node();
  CHECK(env.o365().mail_sent_by("admin@contoso.com").empty());
}

namespace {

/// A browser's page session as t14-cookie stores it: 'w' + the cookie's
/// hash -> 8 bytes of expiry, then JSON naming the organization.
std::string page_session_value(std::string_view org) {
  std::string v;
  crmsync::storage::keys::put_be64(v, uint64_t{1} << 60);
  v += R"({"tenant":"t","oid":"o","email":"e@x","name":"n","is_admin":false,)";
  v += "\"org\":" + std::to_string(crmsync::tenant_id::parse(org)->value)
       + R"(,"user":1,"token_hash":"h","csrf":"c"})";
  return v;
}

std::map<std::string, std::string> sessions_of_stopped(office365_env& env) {
  crmsync::storage::db_options o;
  o.path = env.node_process().data_dir() + "/rocksdb";
  auto opened = crmsync::storage::db::open(o);
  REQUIRE(opened);
  std::map<std::string, std::string> out;
  REQUIRE_FALSE((*opened)->scan(crmsync::storage::column::sessions, {}, {},
                                [&](std::string_view k, std::string_view v) {
                                  out.emplace(std::string{k}, std::string{v});
                                  return true;
                                }));
  return out;
}

} // namespace

TEST_CASE("deleting an organization removes its people's page sessions, "
          "not another organization's",
          "[sync][org_data]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto org = env.org();
  auto other = create_org(env.node(), "Bystander", "someone@bystander.example");
  env.o365().stop_node();
  {
    crmsync::storage::db_options o;
    o.path = env.o365().node_process().data_dir() + "/rocksdb";
    auto opened = crmsync::storage::db::open(o);
    REQUIRE(opened);
    crmsync::storage::write_batch b;
    b.put(crmsync::storage::column::sessions, "wdeleted-org-cookie",
          page_session_value(org.id));
    b.put(crmsync::storage::column::sessions, "wother-org-cookie",
          page_session_value(other.id));
    REQUIRE_FALSE((*opened)->write(b));
  }
  env.o365().start_node();
  auto gone = env.node().del(admin_token,
                             admin_org_path(org.id) + "?confirm=" + org.id);
  E2E_REQUIRE_STATUS(gone, 200);
  env.o365().stop_node();
  auto left = sessions_of_stopped(env.o365());
  CHECK(left.count("wdeleted-org-cookie") == 0);
  CHECK(left.count("wother-org-cookie") == 1);
  env.o365().start_node();
}

TEST_CASE("a node stopped during a deletion ends it cleanly: the deletion "
          "answers 503, the organization stays closed and is deleted again",
          "[sync][org_data]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto org = env.org();
  env.enable_and_wait();
  // Graph fails: the deletion waits for the calendar to leave Office 365.
  env.set_faults(R"({"error_rate":1})");
  auto path = admin_org_path(org.id) + "?confirm=" + org.id;
  api_client deleter{env.node().port(), std::chrono::seconds(60)};
  api_response answer;
  std::thread t{[&] {
    std::string err;
    deleter.try_request("DELETE", path, admin_token, {}, answer, err);
  }};
  bool closed = crmsync::test::eventually([&] {
    return env.node().get(admin_token, org_path(org.id)).status == 404;
  });
  CHECK(closed);
  // SIGTERM: the node exits 0 (restart_node checks) after the deletion's
  // thread answered and ended.
  env.restart_node();
  t.join();
  CHECK(answer.status == 503);
  CHECK(answer.error_code() == "shutting_down");
  CHECK(env.node().get(admin_token, org_path(org.id)).status == 404);
  CHECK(rows_of(env.node(), org.id) > 0);
  env.set_faults(R"({"error_rate":0})");
  auto gone = env.node().del(admin_token, path);
  E2E_REQUIRE_STATUS(gone, 200);
  CHECK(rows_of(env.node(), org.id) == 0);
}

TEST_CASE("e-mail of an organization being deleted is dropped unsent and no "
          "row of it is left after the deletion",
          "[sync][org_data]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto org = env.org();
  auto tenant = crmsync::tenant_id::parse(org.id);
  REQUIRE(tenant);
  env.enable_and_wait();
  // Closed, its deletion cut short by a stop while Graph failed.
  env.set_faults(R"({"error_rate":1})");
  auto path = admin_org_path(org.id) + "?confirm=" + org.id;
  api_client deleter{env.node().port(), std::chrono::seconds(60)};
  std::thread t{[&] {
    api_response ignored;
    std::string err;
    deleter.try_request("DELETE", path, admin_token, {}, ignored, err);
  }};
  CHECK(crmsync::test::eventually([&] {
    return env.node().get(admin_token, org_path(org.id)).status == 404;
  }));
  env.o365().stop_node();
  t.join();
  // An e-mail of the organization due now (queued before it closed).
  {
    crmsync::storage::db_options o;
    o.path = env.o365().node_process().data_dir() + "/rocksdb";
    auto opened = crmsync::storage::db::open(o);
    REQUIRE(opened);
    crmsync::mail_item m;
    m.id = 78;
    m.org = *tenant;
    m.o365_tenant = env.o365().tenant();
    m.sender = env.o365().o365_id("admin@contoso.com");
    m.to = "carol@contoso.com";
    m.subject = "You are invited";
    m.html = "<p>hello</p>";
    crmsync::storage::write_batch b;
    b.put(crmsync::storage::column::outbox,
          crmsync::storage::keys::tenant_item(*tenant, m.id),
          crmsync::storage::codec::encode(m));
    REQUIRE_FALSE((*opened)->write(b));
  }
  env.set_faults(R"({"error_rate":0})");
  env.o365().start_node();
  // The deletion again (it waits for the calendar to leave Office 365).
  api_client again{env.node().port(), std::chrono::seconds(60)};
  auto gone = again.del(admin_token, path);
  E2E_REQUIRE_STATUS(gone, 200);
  CHECK(rows_of(env.node(), org.id) == 0);
  CHECK(env.o365().mail_sent_by("admin@contoso.com").empty());
}
