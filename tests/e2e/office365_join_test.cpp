// End-to-end: an Office 365 user who was not invited asks to join (R10),
// every user with Manage Users is e-mailed (R11) and one of them approves
// (R12); across a restart, and invitations plus join requests while Graph
// throttles and fails.
#include <catch2/catch.hpp>

#include <cstdio>

#include "tests/e2e/office365_fixture.hpp"

using namespace crmsync::e2e;

namespace {

std::string join_requests_path(std::string_view org) {
  return "/api/v1/orgs/" + std::string{org} + "/join-requests";
}

std::string approve_path(std::string_view org, std::string_view request) {
  return join_requests_path(org) + "/" + std::string{request} + "/approve";
}

api_response request_join(office365_env& env, std::string_view session) {
  return env.node().post(session, "/api/v1/join-requests", "{}");
}

/// Whether the e-mail gives an approver a link on the node's public URL
/// (`origin`) to join request `id`. Which page or route the link opens is
/// the link's business: the approval itself is tested through the API.
bool links_to_request(const sent_mail& m, const std::string& origin,
                      const std::string& id) {
  const auto prefix = origin + "/";
  for (auto at = m.html.find(prefix); at != std::string::npos;
       at = m.html.find(prefix, at + 1)) {
    auto end = m.html.find_first_of("\"'<> \t\r\n", at);
    auto target = split_url(m.html.substr(at, end - at)).target;
    target = target.substr(0, target.find_first_of("?#"));
    auto seg = target.find("/" + id);
    auto after = seg + id.size() + 1;
    if (seg != std::string::npos
        && (after == target.size() || target[after] == '/'))
      return true;
  }
  return false;
}

} // namespace

TEST_CASE("office365: a user asks to join and a manager approves",
          "[e2e][office365][join]") {
  office365_env env;
  auto org = env.install_paid();
  // With passwords: a user made without one is e-mailed a link to set it,
  // and this test counts the join request's e-mail.
  auto mia = create_user(env.node(), org.token, org.id, "mia@contoso.example",
                         "Mia", "standard", true, "mia-password-1");
  auto sam = create_user(env.node(), org.token, org.id, "sam@contoso.example",
                         "Sam", "standard", false, "sam-password-1");

  // R10: Bob is told the organization exists and asks to join.
  auto bob = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob.answer, 200);
  CHECK(bob.answer.str("/organization/id") == org.id);
  auto none = env.node().post("", "/api/v1/join-requests", "{}");
  E2E_REQUIRE_STATUS(none, 401);
  CHECK(none.error_code() == "missing_session");
  CHECK(request_join(env, "o365_forged").error_code() == "invalid_session");
  auto nothing = env.node().get(bob.session, "/api/v1/join-requests/mine");
  CHECK(nothing.status == 404);
  auto asked = request_join(env, bob.session);
  E2E_REQUIRE_STATUS(asked, 201);
  CHECK(asked.str("/status") == "pending");
  CHECK(asked.str("/org") == org.id);
  CHECK(asked.str("/email") == "bob@contoso.com");
  CHECK(asked.str("/office365_user_id") == env.o365_id("bob@contoso.com"));
  auto id = asked.str("/id");
  auto again = request_join(env, bob.session);
  CHECK((again.status == 200 || again.status == 201));
  CHECK(again.str("/id") == id);
  auto mine = env.node().get(bob.session, "/api/v1/join-requests/mine");
  E2E_REQUIRE_STATUS(mine, 200);
  CHECK(mine.str("/id") == id);
  CHECK(mine.str("/status") == "pending");

  // R11: every user with Manage Users is e-mailed once, nobody else.
  auto mail = env.wait_for_mail("admin@contoso.com", 2);
  CHECK(by_recipient(mail)
        == std::map<std::string, int>{{"admin@contoso.com", 1},
                                      {"mia@contoso.example", 1}});
  for (auto& m : mail) {
    INFO(m.html);
    CHECK(m.subject.find("Bob") != std::string::npos);
    CHECK(links_to_request(m, env.public_url(), id));
  }

  // The requests are listed for managers only.
  auto listed = env.node().get(mia.token, join_requests_path(org.id));
  E2E_REQUIRE_STATUS(listed, 200);
  REQUIRE(listed.size("/items") == 1);
  CHECK(listed.str("/items/0/id") == id);
  CHECK(listed.str("/items/0/status") == "pending");
  CHECK(env.node().get(sam.token, join_requests_path(org.id)).status == 403);

  // R12: only a user with Manage Users approves.
  auto refused = env.node().post(sam.token, approve_path(org.id, id), "{}");
  E2E_REQUIRE_STATUS(refused, 403);
  CHECK(refused.error_code() == "manage_users_required");
  auto other = create_org(env.node(), "Other", "boss@other.example", "paid");
  CHECK(
      env.node().post(other.admin_token, approve_path(org.id, id), "{}").status
      == 404);
  CHECK(env.node()
            .post(mia.token, approve_path(org.id, "0123456789abcdef"), "{}")
            .status
        == 404);
  auto approved = env.node().post(mia.token, approve_path(org.id, id), "{}");
  E2E_REQUIRE_STATUS(approved, 200);
  CHECK(approved.str("/request/status") == "approved");
  CHECK(approved.str("/request/approved_by") == mia.id);
  CHECK(approved.str("/user/email") == "bob@contoso.com");
  CHECK(approved.str("/user/org_id") == org.id);
  CHECK_FALSE(approved.has("/user/token"));
  auto user_id = approved.str("/user/id");
  auto twice = env.node().post(org.token, approve_path(org.id, id), "{}");
  E2E_REQUIRE_STATUS(twice, 200);
  CHECK(twice.str("/user/id") == user_id);

  // Bob is a CRM user now.
  mine = env.node().get(bob.session, "/api/v1/join-requests/mine");
  E2E_REQUIRE_STATUS(mine, 200);
  CHECK(mine.str("/status") == "approved");
  CHECK(mine.str("/user") == user_id);
  auto member = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(member.answer, 200);
  CHECK(member.answer.str("/status") == "member");
  CHECK(member.answer.str("/user/id") == user_id);
  CHECK(env.node().get(member.token, user_path(org.id, user_id)).status == 200);
  auto member_again = request_join(env, bob.session);
  E2E_REQUIRE_STATUS(member_again, 409);
  CHECK(member_again.error_code() == "already_member");
  auto users = walk_pages(env.node(), org.token, users_path(org.id), 50);
  CHECK(users.size() == 4);

  // Bob is told he is in, from the super administrator's mailbox (Mia
  // has none linked).
  auto audit = env.wait_for_audit(org, "mail.sent", 3);
  CHECK(count_of(audit, "join.requested") == 1);
  CHECK(count_of(audit, "join.approved") == 1);
  CHECK(count_of(audit, "mail.sent") == 3);
  mail = env.mail_sent_by("admin@contoso.com");
  CHECK(by_recipient(mail)
        == std::map<std::string, int>{{"admin@contoso.com", 1},
                                      {"mia@contoso.example", 1},
                                      {"bob@contoso.com", 1}});
  for (auto& m : mail)
    if (m.to == "bob@contoso.com")
      CHECK(m.subject.find("You are in") != std::string::npos);
}

TEST_CASE("office365: a join request survives restarts and is e-mailed once",
          "[e2e][office365][join][restart]") {
  office365_env::options opts;
  opts.public_url = "https://crm.example.test";
  office365_env env{opts};
  auto org = env.install_paid();

  auto session = env.session_of("bob@contoso.com");
  env.restart_node();
  auto asked = request_join(env, session);
  E2E_REQUIRE_STATUS(asked, 201);
  auto id = asked.str("/id");
  env.wait_for_mail("admin@contoso.com", 1);
  env.wait_for_audit(org, "mail.sent", 1);
  env.restart_node();

  // Carol asks while Graph is slow, and the node stops while the e-mail
  // about her request is with Graph: Graph has it, the node has not heard
  // back yet.
  auto carol = env.session_of("carol@contoso.com");
  env.set_faults(R"({"latency_ms":1500})");
  auto carol_id = expect_status(request_join(env, carol), 201).str("/id");
  env.wait_for_mail("admin@contoso.com", 2);
  CHECK(count_of(env.audit_actions(org.id, org.token), "mail.sent") == 1);
  env.stop_node();
  // The stop waited for Graph's answer: nothing is left to send again.
  CHECK(env.outbox_of_stopped_node().empty());
  env.set_faults(R"({"latency_ms":0})");
  env.start_node();
  env.wait_for_audit(org, "mail.sent", 2);

  auto mine = env.node().get(session, "/api/v1/join-requests/mine");
  E2E_REQUIRE_STATUS(mine, 200);
  CHECK(mine.str("/id") == id);
  CHECK(mine.str("/status") == "pending");
  auto again = request_join(env, session);
  CHECK(again.str("/id") == id);
  auto approved = env.node().post(org.token, approve_path(org.id, id), "{}");
  E2E_REQUIRE_STATUS(approved, 200);
  env.restart_node();
  auto member = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(member.answer, 200);
  CHECK(member.answer.str("/status") == "member");
  CHECK(member.answer.str("/user/id") == approved.str("/user/id"));

  // Each request was e-mailed once, with a link to it on the public URL,
  // and Bob was told he is in.
  auto mail = env.wait_for_mail("admin@contoso.com", 3);
  REQUIRE(mail.size() == 3);
  CHECK(by_recipient(mail)
        == std::map<std::string, int>{{"admin@contoso.com", 2},
                                      {"bob@contoso.com", 1}});
  CHECK(links_to_request(mail[0], "https://crm.example.test", id));
  CHECK(links_to_request(mail[1], "https://crm.example.test", carol_id));
  CHECK(count_of(env.audit_actions(org.id, org.token), "mail.failed") == 0);
}

TEST_CASE("office365: invitations and join requests complete while Graph "
          "throttles and fails",
          "[e2e][office365][invite][join][faults]") {
  office365_env::options opts;
  opts.extra_users = 6;
  office365_env env{opts};
  auto org = env.install_paid();
  create_user(env.node(), org.token, org.id, "mia@contoso.example", "Mia",
              "standard", true, "mia-password-1");
  auto bob = env.session_of("bob@contoso.com");
  std::vector<std::string> ids;
  for (int i = 1; i <= 6; ++i) {
    char upn[32];
    std::snprintf(upn, sizeof(upn), "user%02d@contoso.com", i);
    ids.push_back(env.o365_id(upn));
  }

  env.set_faults(R"({"throttle_rate":0.1,"error_rate":0.05})");
  auto sent = env.invite(org.token, org.id, ids);
  E2E_REQUIRE_STATUS(sent, 201);
  CHECK(sent.size("/items") == 6);
  expect_status(request_join(env, bob), 201);
  auto audit
      = env.wait_for_audit(org, "mail.sent", 8, std::chrono::seconds(40));
  env.set_faults(R"({"throttle_rate":0,"error_rate":0})");

  // Each e-mail arrived exactly once.
  auto mail = env.mail_sent_by("admin@contoso.com");
  auto counts = by_recipient(mail);
  CHECK(mail.size() == 8);
  CHECK(counts.size() == 8);
  for (auto& [to, n] : counts)
    CHECK(n == 1);
  CHECK(counts.count("mia@contoso.example") == 1);
  CHECK(counts.count("admin@contoso.com") == 1);
  CHECK(count_of(audit, "mail.sent") == 8);
  CHECK(count_of(audit, "mail.failed") == 0);
  CHECK(count_of(audit, "invite.sent") == 6);
  CHECK(count_of(audit, "join.requested") == 1);
}
