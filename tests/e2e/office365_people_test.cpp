// End-to-end: the people paths of issue 14 as a person walks them. A CRM
// user made with "New User" at their Office 365 address is linked at
// sign-in (and only in the organization linked to their tenant, by the
// verified sign-in name); an invitee who opens the app instead of the
// e-mail sees their invitation; the approvers' e-mail opens a page with
// "Approve & Add"; approving join requests needs a paid edition.
#include <catch2/catch.hpp>

#include "tests/e2e/office365_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync::e2e;

namespace {

constexpr const char* accept_terms = R"({"accept_terms":true})";

std::string join_requests_path(std::string_view org) {
  return "/api/v1/orgs/" + std::string{org} + "/join-requests";
}

std::string approve_path(std::string_view org, std::string_view request) {
  return join_requests_path(org) + "/" + std::string{request} + "/approve";
}

std::string sync_path(std::string_view org, std::string_view user) {
  return user_path(org, user) + "/calendar-sync";
}

/// A browser: GET with Accept preferring HTML.
api_response open_page(office365_env& env, const std::string& target) {
  return env.node().request("GET", target, "", {}, "",
                            {{"Accept", "text/html,*/*;q=0.8"}});
}

/// The page's form as a browser posts it.
api_response post_form(office365_env& env, const std::string& target,
                       const std::string& form) {
  return env.node().request("POST", target, "", form,
                            "application/x-www-form-urlencoded",
                            {{"Accept", "text/html,*/*;q=0.8"}});
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("office365: a CRM user at their Office 365 address is linked at "
          "sign-in, then invite, approve and sync work for them",
          "[e2e][office365][people][link]") {
  office365_env env;
  auto org = env.install_paid();
  // Bob asked to join before anyone made his account: his request waits.
  auto early = env.session_of("bob@contoso.com");
  auto asked = env.node().post(early, "/api/v1/join-requests", "{}");
  E2E_REQUIRE_STATUS(asked, 201);
  // "New User" at Bob's and Carol's Office 365 addresses, no password.
  auto bob
      = create_user(env.node(), org.token, org.id, "bob@contoso.com", "Bob");
  CHECK_FALSE(bob.created.boolean("/has_password"));
  CHECK(bob.created.is_null("/office365_user_id"));
  auto carol = create_user(env.node(), org.token, org.id, "carol@contoso.com",
                           "Carol");

  // Approving Bob's request makes him that user, not a second one.
  auto approved = env.node().post(org.token,
                                  approve_path(org.id, asked.str("/id")), "{}");
  E2E_REQUIRE_STATUS(approved, 200);
  CHECK(approved.str("/user/id") == bob.id);
  CHECK(approved.str("/user/office365_user_id")
        == env.o365_id("bob@contoso.com"));

  // Carol signs in through the app and comes into her account.
  auto signed_in = env.sign_in("/o365/signin", "carol@contoso.com");
  E2E_REQUIRE_STATUS(signed_in.answer, 200);
  CHECK(signed_in.answer.str("/status") == "member");
  CHECK(signed_in.answer.str("/user/id") == carol.id);
  CHECK(signed_in.answer.str("/user/office365_user_id")
        == env.o365_id("carol@contoso.com"));
  REQUIRE(signed_in.token.rfind("crm_", 0) == 0);
  CHECK(env.node().get(signed_in.token, user_path(org.id, carol.id)).status
        == 200);
  auto audit = env.audit_actions(org.id, org.token);
  CHECK(count_of(audit, "signin.linked") == 1);
  // Again: the link holds, and is not made (nor audited) twice.
  auto again = env.sign_in("/o365/signin", "carol@contoso.com");
  E2E_REQUIRE_STATUS(again.answer, 200);
  CHECK(again.answer.str("/user/id") == carol.id);
  CHECK(count_of(env.audit_actions(org.id, org.token), "signin.linked") == 1);

  // Bob signs in as the user the approval linked.
  auto bob_in = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob_in.answer, 200);
  CHECK(bob_in.answer.str("/status") == "member");
  CHECK(bob_in.answer.str("/user/id") == bob.id);
  CHECK(walk_pages(env.node(), org.token, users_path(org.id), 50).size() == 3);

  // The tenant's list shows both as CRM users; inviting them sends nothing.
  auto listed = env.node().get(org.token,
                               "/api/v1/orgs/" + org.id + "/office365/users");
  E2E_REQUIRE_STATUS(listed, 200);
  size_t linked = 0;
  for (size_t i = 0; i < listed.size("/items"); ++i) {
    auto base = "/items/" + std::to_string(i);
    auto upn = listed.str(base + "/user_principal_name");
    if (upn == "bob@contoso.com" || upn == "carol@contoso.com") {
      CHECK(listed.str(base + "/crm_user")
            == (upn == "bob@contoso.com" ? bob.id : carol.id));
      ++linked;
    }
  }
  CHECK(linked == 2);
  auto invited
      = env.invite(org.token, org.id, {env.o365_id("carol@contoso.com")});
  E2E_REQUIRE_STATUS(invited, 201);
  CHECK(invited.size("/items") == 0);
  CHECK(invited.size("/already_members") == 1);

  // Bob's calendar syncs: he is linked to his mailbox.
  auto on = env.node().put(bob_in.token, sync_path(org.id, bob.id),
                           R"({"enabled":true})");
  E2E_REQUIRE_STATUS(on, 200);
  CHECK(on.str("/state") != "error");
  api_response status;
  bool active = crmsync::test::eventually([&] {
    status = env.node().get(bob_in.token, sync_path(org.id, bob.id));
    return status.status == 200 && status.str("/state") == "active";
  });
  INFO(status.body);
  CHECK(active);
}

TEST_CASE("office365: sign-in links no account of another tenant's "
          "organization, nor by an address that is not the sign-in name",
          "[e2e][office365][people][link][security]") {
  office365_env env;
  auto contoso = env.install_paid();
  // Northwind's Erin signs in as erin@northwind.example; her mailbox
  // address (the `email` claim) is in a domain Northwind never verified.
  auto seeded = env.emulator().post(
      "", "/_emulator/tenants",
      R"({"domain":"northwind.example","users":[)"
      R"({"userPrincipalName":"nora@northwind.example","displayName":"Nora",)"
      R"("isAdmin":true},)"
      R"({"userPrincipalName":"erin@northwind.example","displayName":"Erin",)"
      R"("mail":"erin@sales.example"}]})");
  E2E_REQUIRE_STATUS(seeded, 201);
  auto northwind = env.install("nora@northwind.example");
  auto nw_org = northwind.answer.str("/organization/id");
  auto erin = create_user(env.node(), northwind.token, nw_org,
                          "erin@sales.example", "Erin");
  // Contoso's organization has a user at Northwind's address.
  auto stray = create_user(env.node(), contoso.token, contoso.id,
                           "erin@northwind.example", "Erin of Contoso");

  auto signin = env.sign_in("/o365/signin", "erin@northwind.example");
  E2E_REQUIRE_STATUS(signin.answer, 200);
  CHECK(signin.answer.str("/status") == "not_a_member");
  CHECK(signin.answer.str("/organization/id") == nw_org);
  CHECK(signin.token.empty());
  // Neither account was linked, and neither log says so.
  auto stray_now
      = env.node().get(contoso.token, user_path(contoso.id, stray.id));
  E2E_REQUIRE_STATUS(stray_now, 200);
  CHECK(stray_now.is_null("/office365_user_id"));
  auto erin_now = env.node().get(northwind.token, user_path(nw_org, erin.id));
  E2E_REQUIRE_STATUS(erin_now, 200);
  CHECK(erin_now.is_null("/office365_user_id"));
  CHECK(count_of(env.audit_actions(contoso.id, contoso.token), "signin.linked")
        == 0);
  CHECK(count_of(env.audit_actions(nw_org, northwind.token), "signin.linked")
        == 0);
}

TEST_CASE("office365: an invitee who opens the app sees and accepts the "
          "invitation",
          "[e2e][office365][people][invite]") {
  office365_env env;
  auto org = env.install_paid();
  auto sent = env.invite(org.token, org.id, {env.o365_id("bob@contoso.com")});
  E2E_REQUIRE_STATUS(sent, 201);
  REQUIRE(sent.size("/items") == 1);
  auto invite_id = sent.str("/items/0/id");

  // Bob signs in through the app, not the e-mail's link.
  auto bob = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob.answer, 200);
  CHECK(bob.answer.str("/status") == "not_a_member");
  REQUIRE(bob.answer.has("/invite_accept_url"));
  REQUIRE_FALSE(bob.answer.is_null("/invite_accept_url"));
  auto accept_url = bob.answer.str("/invite_accept_url");
  CHECK(accept_url.rfind(env.public_url() + "/api/v1/invites/", 0) == 0);

  auto mine = env.node().get(bob.session, "/api/v1/invites/mine");
  E2E_REQUIRE_STATUS(mine, 200);
  REQUIRE(mine.size("/items") == 1);
  CHECK(mine.str("/items/0/invite/id") == invite_id);
  CHECK(mine.str("/items/0/invite/status") == "pending");
  CHECK(mine.str("/items/0/accept_url") == accept_url);
  // Only their own: Carol has none, and no session lists nothing.
  auto carol = env.session_of("carol@contoso.com");
  auto hers = env.node().get(carol, "/api/v1/invites/mine");
  E2E_REQUIRE_STATUS(hers, 200);
  CHECK(hers.size("/items") == 0);
  auto carol_in = env.sign_in("/o365/signin", "carol@contoso.com");
  CHECK_FALSE(carol_in.answer.has("/invite_accept_url"));
  CHECK(env.node().get("", "/api/v1/invites/mine").status == 401);

  // Carol cannot use Bob's; Bob accepts where the sign-in pointed.
  auto target = split_url(accept_url).target;
  auto stolen = env.node().post(carol, target, accept_terms);
  E2E_REQUIRE_STATUS(stolen, 403);
  CHECK(stolen.error_code() == "not_invitee");
  auto accepted = env.node().post(bob.session, target, accept_terms);
  E2E_REQUIRE_STATUS(accepted, 201);
  CHECK(accepted.str("/status") == "accepted");
  CHECK(accepted.str("/invite/id") == invite_id);
  CHECK(accepted.str("/user/email") == "bob@contoso.com");
  auto none = env.node().get(bob.session, "/api/v1/invites/mine");
  E2E_REQUIRE_STATUS(none, 200);
  CHECK(none.size("/items") == 0);
  auto member = env.sign_in("/o365/signin", "bob@contoso.com");
  CHECK(member.answer.str("/status") == "member");
  CHECK(member.answer.str("/user/id") == accepted.str("/user/id"));
}

TEST_CASE("office365: join requests are approved on the e-mail's page, in "
          "paid editions only",
          "[e2e][office365][people][join]") {
  office365_env env;
  auto installed = env.install("admin@contoso.com"); // the free edition
  installed_org org{installed.answer.str("/organization/id"),
                    installed.answer.str("/user/id"), installed.token};
  // With a password: this test reads the join request's e-mail only.
  auto sam = create_user(env.node(), org.token, org.id, "sam@contoso.example",
                         "Sam", "standard", false, "sam-password-1");

  auto bob = env.session_of("bob@contoso.com");
  auto asked = env.node().post(bob, "/api/v1/join-requests", "{}");
  E2E_REQUIRE_STATUS(asked, 201);
  auto id = asked.str("/id");
  // The manager learns that approving needs a paid edition, and where.
  auto mail = env.wait_for_mail("admin@contoso.com", 1);
  REQUIRE(mail.size() == 1);
  INFO(mail[0].html);
  CHECK(contains(mail[0].html, "paid edition"));
  auto link = link_in(mail[0].html, env.public_url() + "/join-requests/");
  REQUIRE_FALSE(link.empty());
  auto page_path = split_url(link).target;
  CHECK(page_path == "/join-requests/" + org.id + "/" + id);

  // The link opens a page in a browser that signs the approver in first
  // (the page itself: office365_cookie_test.cpp).
  auto page = open_page(env, page_path);
  E2E_REQUIRE_STATUS(page, 302);
  CHECK(split_url(page.header("Location")).origin == env.emulator_url());
  CHECK(open_page(env, "/join-requests/" + org.id + "/%3Cb%3E").status == 404);

  // Free edition: refused, through the API and the page alike.
  auto refused = env.node().post(org.token, approve_path(org.id, id), "{}");
  E2E_REQUIRE_STATUS(refused, 403);
  CHECK(refused.error_code() == "edition_required");
  auto on_page = post_form(env, page_path, "token=" + org.token);
  E2E_REQUIRE_STATUS(on_page, 403);
  CHECK(on_page.header("Content-Type").rfind("text/html", 0) == 0);
  CHECK(contains(on_page.body, "edition_required"));
  auto pending = env.node().get(bob, "/api/v1/join-requests/mine");
  CHECK(pending.str("/status") == "pending");
  CHECK(count_of(env.audit_actions(org.id, org.token), "join.refused") == 2);

  // The upgrade: only a user manager approves on the page, and it works.
  auto paid = env.node().patch(admin_token, org_path(org.id),
                               R"({"edition":"paid"})");
  E2E_REQUIRE_STATUS(paid, 200);
  auto no_token = post_form(env, page_path, "token=");
  E2E_REQUIRE_STATUS(no_token, 401);
  CHECK(no_token.header("Content-Type").rfind("text/html", 0) == 0);
  auto not_manager = post_form(env, page_path, "token=" + sam.token);
  E2E_REQUIRE_STATUS(not_manager, 403);
  CHECK(contains(not_manager.body, "manage_users_required"));
  auto done = post_form(env, page_path, "token=" + org.token);
  E2E_REQUIRE_STATUS(done, 200);
  CHECK(contains(done.body, "bob@contoso.com"));
  auto now = env.node().get(bob, "/api/v1/join-requests/mine");
  E2E_REQUIRE_STATUS(now, 200);
  CHECK(now.str("/status") == "approved");
  auto member = env.sign_in("/o365/signin", "bob@contoso.com");
  CHECK(member.answer.str("/status") == "member");
  CHECK(member.answer.str("/user/id") == now.str("/user"));
}
