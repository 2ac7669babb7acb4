// End-to-end: listing the tenant's Office 365 users, inviting them (R6,
// R7), accepting by the e-mailed link (R8) or associating an existing
// account instead (R9), across restarts and Graph faults.
#include <catch2/catch.hpp>

#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

#include "http/server.hpp"
#include "http/url.hpp"
#include "tests/e2e/office365_fixture.hpp"

using namespace crmsync::e2e;

namespace {

std::string o365_users_path(std::string_view org) {
  return "/api/v1/orgs/" + std::string{org} + "/office365/users";
}

api_response accept(office365_env& env, std::string_view session,
                    std::string_view invite_token, std::string_view body) {
  return env.node().post(
      session, "/api/v1/invites/" + std::string{invite_token} + "/accept",
      body);
}

constexpr const char* accept_terms = R"({"accept_terms":true})";

/// The invite token mailed to `to`, the last one when there are several.
std::string token_mailed_to(office365_env& env,
                            const std::vector<sent_mail>& mail,
                            std::string_view to) {
  std::string token;
  for (auto& m : mail)
    if (m.to == to)
      token = invite_token_in(m, env.public_url());
  INFO("no invitation link for " << to);
  REQUIRE_FALSE(token.empty());
  return token;
}

} // namespace

TEST_CASE("office365: the tenant's Office 365 users are listed from Graph",
          "[e2e][office365][invite]") {
  office365_env env;
  auto org = env.install_paid();

  auto all = env.node().get(org.token, o365_users_path(org.id));
  E2E_REQUIRE_STATUS(all, 200);
  REQUIRE(all.size("/items") == 3);
  CHECK(all.is_null("/next_cursor"));
  std::map<std::string, std::string> seen; // upn -> item
  for (size_t i = 0; i < 3; ++i) {
    auto base = "/items/" + std::to_string(i);
    seen[all.str(base + "/user_principal_name")] = all.json(base);
    auto upn = all.str(base + "/user_principal_name");
    CHECK(all.str(base + "/id") == env.o365_id(upn));
    if (upn == "admin@contoso.com") {
      CHECK(all.str(base + "/crm_user") == org.admin_id);
      CHECK(all.str(base + "/display_name") == "Ada Admin");
    } else {
      CHECK(all.is_null(base + "/crm_user"));
    }
    if (upn == "carol@contoso.com") {
      CHECK_FALSE(all.boolean(base + "/has_mailbox"));
      CHECK(all.is_null(base + "/mail"));
    } else {
      CHECK(all.boolean(base + "/has_mailbox"));
      CHECK(all.str(base + "/mail") == upn);
    }
  }
  CHECK(seen.size() == 3);

  // Paging with the absolute nextLink as the cursor.
  std::set<std::string> paged;
  std::string target = o365_users_path(org.id) + "?limit=1";
  int pages = 0;
  while (pages < 10) {
    auto page = env.node().get(org.token, target);
    E2E_REQUIRE_STATUS(page, 200);
    ++pages;
    REQUIRE(page.size("/items") <= 1);
    if (page.size("/items") == 1)
      paged.insert(page.str("/items/0/id"));
    if (page.is_null("/next_cursor"))
      break;
    auto cursor = page.str("/next_cursor");
    CHECK(cursor.rfind(env.emulator_url() + "/v1.0/", 0) == 0);
    target = o365_users_path(org.id)
             + "?limit=1&cursor=" + crmsync::http::percent_encode(cursor);
  }
  CHECK(paged.size() == 3);
  CHECK(pages >= 3);

  // Only users who manage users may list; other organizations see nothing.
  auto sam = create_user(env.node(), org.token, org.id, "sam@contoso.example",
                         "Sam");
  auto refused = env.node().get(sam.token, o365_users_path(org.id));
  E2E_REQUIRE_STATUS(refused, 403);
  CHECK(refused.error_code() == "manage_users_required");
  auto mia = create_user(env.node(), org.token, org.id, "mia@contoso.example",
                         "Mia", "standard", true);
  CHECK(env.node().get(mia.token, o365_users_path(org.id)).status == 200);
  auto other = create_org(env.node(), "Other", "boss@other.example", "paid");
  CHECK(env.node().get(other.admin_token, o365_users_path(org.id)).status
        == 404);
  auto not_linked
      = env.node().get(other.admin_token, o365_users_path(other.id));
  E2E_REQUIRE_STATUS(not_linked, 409);
  CHECK(not_linked.error_code() == "office365_not_installed");
}

TEST_CASE("office365: a cursor is only followed to Graph itself",
          "[e2e][office365][invite][security]") {
  // A cursor naming another host must not make the node send the tenant's
  // Graph token there.
  std::mutex mtx;
  std::vector<std::string> seen_auth;
  crmsync::http::server_config scfg;
  scfg.host = "127.0.0.1";
  scfg.port = 0;
  scfg.threads = 1;
  crmsync::http::server spy{
      scfg, [&](crmsync::http::request&& req, crmsync::http::responder_ptr r) {
        {
          std::lock_guard<std::mutex> guard{mtx};
          seen_auth.emplace_back(req.header("authorization"));
        }
        crmsync::http::response res;
        res.body = R"({"value":[]})";
        r->reply(std::move(res));
      }};
  std::string err;
  REQUIRE(spy.start(err));

  office365_env env;
  auto org = env.install_paid();
  auto stolen
      = "http://127.0.0.1:" + std::to_string(spy.port()) + "/v1.0/users?$top=1";
  auto r
      = env.node().get(org.token, o365_users_path(org.id) + "?cursor="
                                      + crmsync::http::percent_encode(stolen));
  spy.stop_accepting();
  spy.stop();
  INFO(r.describe());
  CHECK(r.status == 400);
  CHECK(r.error_field() == "cursor");
  std::lock_guard<std::mutex> guard{mtx};
  CHECK(seen_auth.empty());

  // Graph's own host, but not its user list: refused too (the app's token
  // would otherwise read whatever the cursor names).
  for (std::string other :
       {env.emulator_url() + "/v1.0/users/" + env.o365_id("bob@contoso.com")
            + "/events?$top=1",
        env.emulator_url() + "/v1.0/users/../users?$top=1",
        env.emulator_url() + "/v1.0/users"}) {
    INFO("cursor " << other);
    auto refused
        = env.node().get(org.token, o365_users_path(org.id) + "?cursor="
                                        + crmsync::http::percent_encode(other));
    CHECK(refused.status == 400);
    CHECK(refused.error_field() == "cursor");
  }
}

TEST_CASE("office365: inviting needs Manage Users, a paid edition and users "
          "of the tenant",
          "[e2e][office365][invite]") {
  office365_env env;
  auto installed = env.install("admin@contoso.com");
  auto org_id = installed.answer.str("/organization/id");
  auto bob = env.o365_id("bob@contoso.com");

  // R6: the free edition gets a clear refusal.
  auto free = env.invite(installed.token, org_id, {bob});
  E2E_REQUIRE_STATUS(free, 403);
  CHECK(free.error_code() == "edition_required");
  REQUIRE(env.node()
              .patch(admin_token, org_path(org_id), R"({"edition":"paid"})")
              .status
          == 200);

  auto sam = create_user(env.node(), installed.token, org_id,
                         "sam@contoso.example", "Sam");
  auto no_permission = env.invite(sam.token, org_id, {bob});
  E2E_REQUIRE_STATUS(no_permission, 403);
  CHECK(no_permission.error_code() == "manage_users_required");

  auto unknown = env.invite(installed.token, org_id,
                            {bob, "00000000-0000-0000-0000-000000000000"});
  E2E_REQUIRE_STATUS(unknown, 400);
  CHECK(unknown.error_code() == "unknown_office365_user");
  CHECK(unknown.error_field() == "office365_user_ids");

  std::map<std::string, std::string> fabrikam;
  env.seed_tenant("fabrikam.com", {{"dave@fabrikam.com", "Dave", false, true}},
                  fabrikam);
  auto foreign
      = env.invite(installed.token, org_id, {fabrikam["dave@fabrikam.com"]});
  E2E_REQUIRE_STATUS(foreign, 400);
  CHECK(foreign.error_code() == "unknown_office365_user");

  auto empty = env.invite(installed.token, org_id, {});
  CHECK(empty.status == 400);
  auto twice = env.invite(installed.token, org_id, {bob, bob});
  CHECK(twice.status == 400);
  CHECK(twice.error_field() == "office365_user_ids");
  auto no_json = env.node().request(
      "POST", invites_path(org_id), installed.token,
      "{\"office365_user_ids\":[\"" + bob + "\"]}", "text/plain");
  CHECK(no_json.status == 415);

  // Someone who is a CRM user already gets no invitation.
  auto members
      = env.invite(installed.token, org_id, {env.o365_id("admin@contoso.com")});
  E2E_REQUIRE_STATUS(members, 201);
  CHECK(members.size("/items") == 0);
  REQUIRE(members.size("/already_members") == 1);
  CHECK(members.str("/already_members/0/email") == "admin@contoso.com");

  // Nothing above created an invitation; only managers see the list.
  auto hidden = env.node().get(sam.token, invites_path(org_id));
  E2E_REQUIRE_STATUS(hidden, 403);
  CHECK(hidden.error_code() == "manage_users_required");
  CHECK(env.node().get(sam.token, "/api/v1/orgs/" + org_id + "/audit").status
        == 403);
  auto listed = env.node().get(installed.token, invites_path(org_id));
  E2E_REQUIRE_STATUS(listed, 200);
  CHECK(listed.size("/items") == 0);
  CHECK(count_of(env.audit_actions(org_id, installed.token), "invite.sent")
        == 0);
}

TEST_CASE("office365: an invitee follows the e-mailed link and joins",
          "[e2e][office365][invite]") {
  office365_env env;
  auto org = env.install_paid();
  auto bob_id = env.o365_id("bob@contoso.com");

  auto sent = env.invite(org.token, org.id, {bob_id});
  E2E_REQUIRE_STATUS(sent, 201);
  REQUIRE(sent.size("/items") == 1);
  CHECK(sent.size("/already_members") == 0);
  CHECK(sent.str("/items/0/status") == "pending");
  CHECK(sent.str("/items/0/email") == "bob@contoso.com");
  CHECK(sent.str("/items/0/name") == "Bob");
  CHECK(sent.str("/items/0/office365_user_id") == bob_id);
  CHECK(sent.str("/items/0/invited_by") == org.admin_id);
  CHECK(sent.is_null("/items/0/user"));
  CHECK_FALSE(sent.has("/items/0/token"));

  // R7: the invitation e-mail goes out from the inviter's mailbox.
  auto mail = env.wait_for_mail("admin@contoso.com", 1);
  REQUIRE(mail.size() == 1);
  CHECK(mail[0].to == "bob@contoso.com");
  auto token = token_mailed_to(env, mail, "bob@contoso.com");

  // R8: the link signs Bob in and says where to accept.
  auto signin = env.sign_in("/invite/" + token, "bob@contoso.com");
  E2E_REQUIRE_STATUS(signin.answer, 200);
  CHECK(signin.answer.str("/status") == "not_a_member");
  CHECK(signin.answer.str("/organization/id") == org.id);
  auto accept_url = signin.answer.str("/invite_accept_url");
  CHECK(accept_url
        == env.public_url() + "/api/v1/invites/" + token + "/accept");
  auto session = signin.session;

  auto none = accept(env, "", token, accept_terms);
  E2E_REQUIRE_STATUS(none, 401);
  CHECK(none.error_code() == "missing_session");
  auto bogus = accept(env, "o365_not-a-session", token, accept_terms);
  E2E_REQUIRE_STATUS(bogus, 401);
  CHECK(bogus.error_code() == "invalid_session");
  auto declined = accept(env, session, token, R"({"accept_terms":false})");
  E2E_REQUIRE_STATUS(declined, 400);
  CHECK(declined.error_code() == "terms_not_accepted");
  CHECK(accept(env, session, token, "{}").status == 400);
  auto carol = env.session_of("carol@contoso.com");
  auto not_hers = accept(env, carol, token, accept_terms);
  E2E_REQUIRE_STATUS(not_hers, 403);
  CHECK(not_hers.error_code() == "not_invitee");
  auto unknown = accept(env, session, "no-such-invitation", accept_terms);
  E2E_REQUIRE_STATUS(unknown, 404);
  CHECK(unknown.error_code() == "invite_not_found");

  auto accepted
      = env.node().post(session, split_url(accept_url).target, accept_terms);
  E2E_REQUIRE_STATUS(accepted, 201);
  CHECK(accepted.str("/status") == "accepted");
  CHECK(accepted.str("/invite/status") == "accepted");
  CHECK(accepted.str("/user/email") == "bob@contoso.com");
  CHECK(accepted.str("/user/name") == "Bob");
  CHECK(accepted.str("/user/org_id") == org.id);
  CHECK_FALSE(accepted.boolean("/user/super_admin"));
  CHECK(accepted.str("/invite/user") == accepted.str("/user/id"));
  auto bob_token = accepted.str("/user/token");
  CHECK(env.node().get(bob_token, org_path(org.id)).status == 200);

  auto twice = accept(env, session, token, accept_terms);
  E2E_REQUIRE_STATUS(twice, 410);
  CHECK(twice.error_code() == "invite_used");

  // Bob is a CRM user now: signing in gives him his account.
  auto member = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(member.answer, 200);
  CHECK(member.answer.str("/status") == "member");
  CHECK(member.answer.str("/user/id") == accepted.str("/user/id"));
  auto listed = env.node().get(org.token, invites_path(org.id));
  E2E_REQUIRE_STATUS(listed, 200);
  REQUIRE(listed.size("/items") == 1);
  CHECK(listed.str("/items/0/status") == "accepted");
  CHECK_FALSE(listed.is_null("/items/0/resolved"));
  // The tenant's user list shows Bob linked to his new account.
  auto users = env.node().get(org.token, o365_users_path(org.id));
  E2E_REQUIRE_STATUS(users, 200);
  std::string bob_item;
  for (size_t i = 0; i < users.size("/items"); ++i)
    if (users.str("/items/" + std::to_string(i) + "/id") == bob_id)
      bob_item = "/items/" + std::to_string(i);
  INFO(users.describe());
  REQUIRE_FALSE(bob_item.empty());
  CHECK(users.str(bob_item + "/user_principal_name") == "bob@contoso.com");
  CHECK(users.str(bob_item + "/crm_user") == accepted.str("/user/id"));
  auto again = env.invite(org.token, org.id, {bob_id});
  E2E_REQUIRE_STATUS(again, 201);
  CHECK(again.size("/items") == 0);
  CHECK(again.size("/already_members") == 1);

  // A manager without an Office 365 link invites from the super
  // administrator's mailbox; Carol has no mailbox, her UPN is her address.
  auto mia = create_user(env.node(), org.token, org.id, "mia@contoso.example",
                         "Mia", "standard", true, "mia-password-1");
  auto by_mia
      = env.invite(mia.token, org.id, {env.o365_id("carol@contoso.com")});
  E2E_REQUIRE_STATUS(by_mia, 201);
  CHECK(by_mia.str("/items/0/invited_by") == mia.id);
  CHECK(by_mia.str("/items/0/email") == "carol@contoso.com");
  mail = env.wait_for_mail("admin@contoso.com", 2);
  REQUIRE(mail.size() == 2);
  CHECK(by_recipient(mail)
        == std::map<std::string, int>{{"bob@contoso.com", 1},
                                      {"carol@contoso.com", 1}});

  auto audit = env.wait_for_audit(org, "mail.sent", 2);
  CHECK(count_of(audit, "invite.sent") == 2);
  CHECK(count_of(audit, "mail.sent") == 2);
  CHECK(count_of(audit, "invite.accepted") == 1);
  CHECK(count_of(audit, "mail.failed") == 0);
}

TEST_CASE("office365: inviting a pending invitee again supersedes the old "
          "link",
          "[e2e][office365][invite]") {
  office365_env env;
  auto org = env.install_paid();
  auto bob_id = env.o365_id("bob@contoso.com");
  expect_status(env.invite(org.token, org.id, {bob_id}), 201);
  auto first = token_mailed_to(env, env.wait_for_mail("admin@contoso.com", 1),
                               "bob@contoso.com");
  expect_status(env.invite(org.token, org.id, {bob_id}), 201);
  auto mail = env.wait_for_mail("admin@contoso.com", 2);
  REQUIRE(mail.size() == 2);
  auto second = token_mailed_to(env, mail, "bob@contoso.com");
  REQUIRE(first != second);

  auto session = env.session_of("bob@contoso.com");
  auto old = accept(env, session, first, accept_terms);
  E2E_REQUIRE_STATUS(old, 410);
  CHECK(old.error_code() == "invite_superseded");
  expect_status(accept(env, session, second, accept_terms), 201);

  auto listed = env.node().get(org.token, invites_path(org.id));
  E2E_REQUIRE_STATUS(listed, 200);
  REQUIRE(listed.size("/items") == 2);
  std::multiset<std::string> statuses{listed.str("/items/0/status"),
                                      listed.str("/items/1/status")};
  CHECK(statuses == std::multiset<std::string>{"accepted", "superseded"});
}

TEST_CASE("office365: an expired invitation is refused and listed as expired",
          "[e2e][office365][invite]") {
  office365_env::options opts;
  opts.node_args = {"--invite-lifetime", "1"};
  office365_env env{opts};
  auto org = env.install_paid();
  auto bob_id = env.o365_id("bob@contoso.com");
  auto invited = expect_status(env.invite(org.token, org.id, {bob_id}), 201);
  auto expires = invited.str("/items/0/expires");
  auto token = token_mailed_to(env, env.wait_for_mail("admin@contoso.com", 1),
                               "bob@contoso.com");
  auto session = env.session_of("bob@contoso.com");
  // The link works for one second; wait until it has certainly passed.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto late = accept(env, session, token, accept_terms);
  E2E_REQUIRE_STATUS(late, 410);
  CHECK(late.error_code() == "invite_expired");
  // Nothing joined; the invitation is listed as expired (a new one can be
  // sent), and the refusal is in the audit log.
  auto listed = env.node().get(org.token, invites_path(org.id));
  E2E_REQUIRE_STATUS(listed, 200);
  REQUIRE(listed.size("/items") == 1);
  CHECK(listed.str("/items/0/status") == "expired");
  CHECK(listed.str("/items/0/expires") == expires);
  CHECK(count_of(env.audit_actions(org.id, org.token), "invite.refused") == 1);
  CHECK(count_of(env.audit_actions(org.id, org.token), "invite.accepted") == 0);
}

TEST_CASE("office365: an invitee associates the CRM account they already "
          "have instead of joining",
          "[e2e][office365][invite][associate]") {
  office365_env env;
  auto org = env.install_paid();
  auto elsewhere = create_org(env.node(), "Elsewhere", "boss@elsewhere.example",
                              "free", "boss-password-1");
  auto robert = create_user(env.node(), elsewhere.admin_token, elsewhere.id,
                            "robert@elsewhere.example", "Robert", "standard",
                            false, "robert-password-1");
  create_user(env.node(), org.token, org.id, "bobby@contoso.example", "Bobby",
              "standard", false, "bobby-password-1");
  expect_status(env.invite(org.token, org.id, {env.o365_id("bob@contoso.com")}),
                201);
  auto token = token_mailed_to(env, env.wait_for_mail("admin@contoso.com", 1),
                               "bob@contoso.com");
  auto signin = env.sign_in("/invite/" + token, "bob@contoso.com");
  E2E_REQUIRE_STATUS(signin.answer, 200);
  auto session = signin.session;
  auto with_account = [](std::string_view email, std::string_view password) {
    return R"({"accept_terms":true,"associate":{"email":)" + json_str(email)
           + ",\"password\":" + json_str(password) + "}}";
  };

  auto wrong = accept(env, session, token,
                      with_account("robert@elsewhere.example", "wrong-one"));
  E2E_REQUIRE_STATUS(wrong, 401);
  CHECK(wrong.error_code() == "invalid_credentials");
  auto same_org
      = accept(env, session, token,
               with_account("bobby@contoso.example", "bobby-password-1"));
  E2E_REQUIRE_STATUS(same_org, 409);
  CHECK(same_org.error_code() == "already_member");

  // R9: Bob goes to the account he already has.
  auto associated
      = accept(env, session, token,
               with_account("robert@elsewhere.example", "robert-password-1"));
  E2E_REQUIRE_STATUS(associated, 200);
  CHECK(associated.str("/status") == "associated");
  CHECK(associated.str("/user/id") == robert.id);
  CHECK(associated.str("/user/org_id") == elsewhere.id);
  CHECK(env.node()
            .get(associated.str("/user/token"),
                 user_path(elsewhere.id, robert.id))
            .status
        == 200);
  auto twice = accept(env, session, token, accept_terms);
  E2E_REQUIRE_STATUS(twice, 410);
  CHECK(twice.error_code() == "invite_used");

  // He did not join the inviting organization.
  auto listed = env.node().get(org.token, invites_path(org.id));
  E2E_REQUIRE_STATUS(listed, 200);
  CHECK(listed.str("/items/0/status") == "associated");
  auto members = walk_pages(env.node(), org.token, users_path(org.id), 50);
  CHECK(members.size() == 2); // the admin and Bobby
  for (auto& m : members)
    CHECK(m.find("bob@contoso.com") == std::string::npos);
  auto member = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(member.answer, 200);
  CHECK(member.answer.str("/status") == "member");
  CHECK(member.answer.str("/organization/id") == elsewhere.id);
  CHECK(member.answer.str("/user/id") == robert.id);
  CHECK(count_of(env.audit_actions(org.id, org.token), "invite.associated")
        == 1);
}

TEST_CASE("office365: invitations survive restarts and are e-mailed once",
          "[e2e][office365][invite][restart]") {
  office365_env::options opts;
  opts.public_url = "https://crm.example.test";
  opts.extra_users = 1;
  office365_env env{opts};
  auto org = env.install_paid();

  // Sent before the restart: not sent again after it.
  expect_status(env.invite(org.token, org.id, {env.o365_id("bob@contoso.com")}),
                201);
  REQUIRE(env.wait_for_mail("admin@contoso.com", 1).size() == 1);
  env.wait_for_audit(org, "mail.sent", 1);
  env.restart_node();

  // Queued when the node stops: sent once after the restart. Graph holds
  // every answer back, so the node stops while the first of the two e-mails
  // is with Graph and the second still waits in the outbox.
  env.set_faults(R"({"latency_ms":1500})");
  expect_status(env.invite(org.token, org.id,
                           {env.o365_id("carol@contoso.com"),
                            env.o365_id("user01@contoso.com")}),
                201);
  auto with_graph = env.wait_for_mail("admin@contoso.com", 2);
  env.stop_node();
  auto queued = env.outbox_of_stopped_node();
  env.set_faults(R"({"latency_ms":0})");
  // The stop really came mid-way: Graph had one of the two, the other was
  // still queued when the node went down.
  CHECK(env.mail_sent_by("admin@contoso.com").size() == 2);
  REQUIRE(queued.size() == 1);
  CHECK(std::set<std::string>{with_graph[1].to, queued[0].to}
        == std::set<std::string>{"carol@contoso.com", "user01@contoso.com"});
  env.start_node();
  auto mail = env.wait_for_mail("admin@contoso.com", 3);
  env.wait_for_audit(org, "mail.sent", 3);
  // One more invitation after everything was sent: a resend of any older
  // one would have gone out first.
  auto session = env.session_of("bob@contoso.com"); // before a restart
  env.restart_node();
  expect_status(env.invite(org.token, org.id, {env.o365_id("bob@contoso.com")}),
                201);
  mail = env.wait_for_mail("admin@contoso.com", 4);
  env.wait_for_audit(org, "mail.sent", 4);
  mail = env.mail_sent_by("admin@contoso.com");
  CHECK(by_recipient(mail)
        == std::map<std::string, int>{{"bob@contoso.com", 2},
                                      {"carol@contoso.com", 1},
                                      {"user01@contoso.com", 1}});
  for (auto& m : mail)
    CHECK(m.html.find("https://crm.example.test/invite/") != std::string::npos);

  // The session from before the restart accepts the newest link.
  auto token = token_mailed_to(env, mail, "bob@contoso.com");
  env.restart_node();
  auto accepted = accept(env, session, token, accept_terms);
  E2E_REQUIRE_STATUS(accepted, 201);
  CHECK(accepted.str("/status") == "accepted");
  auto carol_token = token_mailed_to(env, mail, "carol@contoso.com");
  auto carol = env.sign_in("/invite/" + carol_token, "carol@contoso.com");
  E2E_REQUIRE_STATUS(carol.answer, 200);
  expect_status(accept(env, carol.session, carol_token, accept_terms), 201);
  CHECK(env.mail_sent_by("admin@contoso.com").size() == 4);
  CHECK(count_of(env.audit_actions(org.id, org.token), "mail.failed") == 0);
}

TEST_CASE("office365: twelve invitations at once respect Outlook's "
          "per-mailbox limit",
          "[e2e][office365][invite][graph]") {
  office365_env::options opts;
  opts.extra_users = 12;
  office365_env env{opts};
  auto org = env.install_paid();
  std::vector<std::string> ids;
  for (int i = 1; i <= 12; ++i) {
    char upn[32];
    std::snprintf(upn, sizeof(upn), "user%02d@contoso.com", i);
    ids.push_back(env.o365_id(upn));
  }
  env.set_faults(R"({"latency_ms":50})");
  const auto started = std::chrono::steady_clock::now();
  auto sent = env.invite(org.token, org.id, ids);
  E2E_REQUIRE_STATUS(sent, 201);
  CHECK(sent.size("/items") == 12);
  auto mail = env.wait_for_mail("admin@contoso.com", 12);
  const auto took = std::chrono::steady_clock::now() - started;
  env.set_faults(R"({"latency_ms":0})");
  auto counts = by_recipient(mail);
  CHECK(mail.size() == 12);
  CHECK(counts.size() == 12);
  for (auto& [to, n] : counts)
    CHECK(n == 1);
  // Every 429 would cost a Retry-After of a second: none came.
  CHECK(took < std::chrono::seconds(5));
  auto state = env.emulator().get("", "/_emulator/state");
  E2E_REQUIRE_STATUS(state, 200);
  CHECK(state.u64("/mail") == 12);
  auto audit = env.wait_for_audit(org, "mail.sent", 12);
  CHECK(count_of(audit, "mail.sent") == 12);
  CHECK(count_of(audit, "mail.failed") == 0);
}

TEST_CASE("office365: an invitation is accepted once when accepts race",
          "[e2e][office365][invite][race]") {
  office365_env env;
  auto org = env.install_paid();
  expect_status(env.invite(org.token, org.id, {env.o365_id("bob@contoso.com")}),
                201);
  auto token = token_mailed_to(env, env.wait_for_mail("admin@contoso.com", 1),
                               "bob@contoso.com");
  auto session = env.session_of("bob@contoso.com");
  race_request one{"POST", "/api/v1/invites/" + token + "/accept", session,
                   accept_terms};
  auto raced = send_at_once(env.node().port(), {one, one, one});
  std::multiset<int> statuses;
  for (auto& r : raced.results)
    statuses.insert(r.status);
  CHECK(statuses == std::multiset<int>{201, 410, 410});
  auto members = walk_pages(env.node(), org.token, users_path(org.id), 50);
  CHECK(members.size() == 2);
}

TEST_CASE("office365: an invitee who joined by request cannot accept too",
          "[e2e][office365][invite][join]") {
  office365_env env;
  auto org = env.install_paid();
  expect_status(env.invite(org.token, org.id, {env.o365_id("bob@contoso.com")}),
                201);
  auto token = token_mailed_to(env, env.wait_for_mail("admin@contoso.com", 1),
                               "bob@contoso.com");
  auto session = env.session_of("bob@contoso.com");
  auto asked = env.node().post(session, "/api/v1/join-requests", "{}");
  E2E_REQUIRE_STATUS(asked, 201);
  auto approved = env.node().post(org.token,
                                  "/api/v1/orgs/" + org.id + "/join-requests/"
                                      + asked.str("/id") + "/approve",
                                  "{}");
  E2E_REQUIRE_STATUS(approved, 200);

  // Bob is a CRM user already: accepting makes no second account.
  auto late = accept(env, session, token, accept_terms);
  INFO(late.describe());
  CHECK(late.status == 409);
  auto members = walk_pages(env.node(), org.token, users_path(org.id), 50);
  CHECK(members.size() == 2);
  auto member = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(member.answer, 200);
  CHECK(member.answer.str("/user/id") == approved.str("/user/id"));
}

TEST_CASE("office365: an invitation Outlook keeps refusing is reported in "
          "the audit log",
          "[e2e][office365][invite][graph]") {
  // Outlook accepts two requests per mailbox in ten minutes: the third
  // invitation e-mail is throttled far beyond any sensible wait.
  office365_env::options opts;
  opts.extra_users = 1;
  opts.emulator_args = {"--mailbox-limit", "2"};
  office365_env env{opts};
  auto org = env.install_paid();
  auto sent = env.invite(org.token, org.id,
                         {env.o365_id("bob@contoso.com"),
                          env.o365_id("carol@contoso.com"),
                          env.o365_id("user01@contoso.com")});
  E2E_REQUIRE_STATUS(sent, 201);
  CHECK(sent.size("/items") == 3);
  auto audit
      = env.wait_for_audit(org, "mail.failed", 1, std::chrono::seconds(40));
  CHECK(count_of(audit, "mail.failed") == 1);
  CHECK(count_of(audit, "mail.sent") == 2);
  CHECK(env.mail_sent_by("admin@contoso.com").size() == 2);
  // The invitations themselves stay valid.
  auto listed = env.node().get(org.token, invites_path(org.id));
  E2E_REQUIRE_STATUS(listed, 200);
  CHECK(listed.size("/items") == 3);
  for (size_t i = 0; i < 3; ++i)
    CHECK(listed.str("/items/" + std::to_string(i) + "/status") == "pending");
}
