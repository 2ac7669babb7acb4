// End-to-end: taking back what was offered (issue 14, user lifecycle). A
// user manager revokes a pending invitation (its link then says so) and
// rejects a join request (the requester is told by e-mail); nobody else
// can, and what is resolved stays resolved.
#include <catch2/catch.hpp>

#include "tests/e2e/office365_fixture.hpp"

using namespace crmsync::e2e;

namespace {

const std::string accept_terms = R"({"accept_terms":true})";

std::string invite_path(std::string_view org, std::string_view id) {
  return invites_path(org) + "/" + std::string{id};
}

std::string join_requests_path(std::string_view org) {
  return "/api/v1/orgs/" + std::string{org} + "/join-requests";
}

std::string request_path(std::string_view org, std::string_view id,
                         std::string_view action) {
  return join_requests_path(org) + "/" + std::string{id} + "/"
         + std::string{action};
}

api_response accept(office365_env& env, const std::string& session,
                    const std::string& token) {
  return env.node().post(session, "/api/v1/invites/" + token + "/accept",
                         accept_terms);
}

} // namespace

TEST_CASE("office365: a user manager revokes a pending invitation",
          "[e2e][office365][invite][lifecycle]") {
  office365_env env;
  auto org = env.install_paid();
  auto sam = create_user(env.node(), org.token, org.id, "sam@contoso.example",
                         "Sam", "standard", false, "sam-password-1");
  auto sent = expect_status(
      env.invite(org.token, org.id, {env.o365_id("bob@contoso.com")}), 201);
  auto id = sent.str("/items/0/id");
  auto token = invite_token_in(env.wait_for_mail("admin@contoso.com", 1)[0],
                               env.public_url());

  // Nobody without Manage Users, and no other organization, revokes it.
  auto refused = env.node().del(sam.token, invite_path(org.id, id));
  E2E_REQUIRE_STATUS(refused, 403);
  CHECK(refused.error_code() == "manage_users_required");
  auto other = create_org(env.node(), "Other", "boss@other.example", "paid");
  CHECK(env.node().del(other.admin_token, invite_path(org.id, id)).status
        == 404);
  CHECK(env.node().del(other.admin_token, invite_path(other.id, id)).status
        == 404);
  CHECK(
      env.node().del(org.token, invite_path(org.id, "0123456789abcdef")).status
      == 404);
  CHECK(env.node().del(org.token, invite_path(org.id, "nonsense")).status
        == 404);
  CHECK(env.node().del("", invite_path(org.id, id)).status == 401);
  auto still = env.node().get(org.token, invites_path(org.id));
  CHECK(still.str("/items/0/status") == "pending");

  auto revoked = env.node().del(org.token, invite_path(org.id, id));
  E2E_REQUIRE_STATUS(revoked, 200);
  CHECK(revoked.str("/status") == "revoked");
  CHECK(revoked.str("/id") == id);
  auto again = env.node().del(org.token, invite_path(org.id, id));
  E2E_REQUIRE_STATUS(again, 200);
  CHECK(again.str("/status") == "revoked");
  auto listed = env.node().get(org.token, invites_path(org.id));
  E2E_REQUIRE_STATUS(listed, 200);
  CHECK(listed.str("/items/0/status") == "revoked");
  CHECK_FALSE(listed.is_null("/items/0/resolved"));

  // The link says it was revoked, and Bob does not join.
  auto session = env.session_of("bob@contoso.com");
  auto late = accept(env, session, token);
  E2E_REQUIRE_STATUS(late, 410);
  CHECK(late.error_code() == "invite_revoked");
  CHECK(env.node().get(session, "/api/v1/invites/mine").size("/items") == 0);
  CHECK(count_of(env.audit_actions(org.id, org.token), "invite.revoked") == 1);

  // A used invitation is not revoked.
  auto carol = env.o365_id("carol@contoso.com");
  auto second = expect_status(env.invite(org.token, org.id, {carol}), 201);
  auto carol_mail = env.wait_for_mail("admin@contoso.com", 2);
  std::string carol_token;
  for (auto& m : carol_mail)
    if (m.to == "carol@contoso.com")
      carol_token = invite_token_in(m, env.public_url());
  expect_status(accept(env, env.session_of("carol@contoso.com"), carol_token),
                201);
  auto used = env.node().del(org.token,
                             invite_path(org.id, second.str("/items/0/id")));
  E2E_REQUIRE_STATUS(used, 409);
  CHECK(used.error_code() == "invite_resolved");
}

TEST_CASE("office365: a user manager rejects a join request and the "
          "requester is told",
          "[e2e][office365][join][lifecycle]") {
  office365_env env;
  auto org = env.install_paid();
  // With passwords: no e-mail to set one, only the ones counted here.
  auto mia = create_user(env.node(), org.token, org.id, "mia@contoso.example",
                         "Mia", "standard", true, "mia-password-1");
  auto sam = create_user(env.node(), org.token, org.id, "sam@contoso.example",
                         "Sam", "standard", false, "sam-password-1");
  auto bob = env.session_of("bob@contoso.com");
  auto asked
      = expect_status(env.node().post(bob, "/api/v1/join-requests", "{}"), 201);
  auto id = asked.str("/id");
  env.wait_for_mail("admin@contoso.com", 2);

  auto refused
      = env.node().post(sam.token, request_path(org.id, id, "reject"), "");
  E2E_REQUIRE_STATUS(refused, 403);
  CHECK(refused.error_code() == "manage_users_required");
  auto other = create_org(env.node(), "Other", "boss@other.example", "paid");
  CHECK(env.node()
            .post(other.admin_token, request_path(org.id, id, "reject"), "")
            .status
        == 404);
  CHECK(env.node()
            .post(mia.token, request_path(org.id, "0123456789abcdef", "reject"),
                  "")
            .status
        == 404);
  auto mine = env.node().get(bob, "/api/v1/join-requests/mine");
  CHECK(mine.str("/status") == "pending");

  auto rejected
      = env.node().post(mia.token, request_path(org.id, id, "reject"), "");
  E2E_REQUIRE_STATUS(rejected, 200);
  CHECK(rejected.str("/status") == "rejected");
  mine = env.node().get(bob, "/api/v1/join-requests/mine");
  E2E_REQUIRE_STATUS(mine, 200);
  CHECK(mine.str("/status") == "rejected");
  // Bob is told, from the super administrator's mailbox (Mia has none).
  auto mail = env.wait_for_mail("admin@contoso.com", 3);
  REQUIRE(mail.size() == 3);
  CHECK(mail[2].to == "bob@contoso.com");
  CHECK(mail[2].subject.find("Your request to join") != std::string::npos);
  CHECK(mail[2].html.find("not approved") != std::string::npos);

  // Rejected stays rejected: not approved afterwards, and a second
  // rejection mails nobody again.
  auto approve
      = env.node().post(org.token, request_path(org.id, id, "approve"), "{}");
  E2E_REQUIRE_STATUS(approve, 409);
  CHECK(approve.error_code() == "join_rejected");
  expect_status(
      env.node().post(org.token, request_path(org.id, id, "reject"), ""), 200);
  auto audit = env.wait_for_audit(org, "mail.sent", 3);
  CHECK(count_of(audit, "join.rejected") == 1);
  CHECK(env.mail_sent_by("admin@contoso.com").size() == 3);
  // Bob is no CRM user, and may ask again.
  auto signin = env.sign_in("/o365/signin", "bob@contoso.com");
  CHECK(signin.answer.str("/status") == "not_a_member");
  auto again
      = expect_status(env.node().post(bob, "/api/v1/join-requests", "{}"), 201);
  CHECK(again.str("/id") != id);
  CHECK(again.str("/status") == "pending");
}
