// End-to-end: installing the app for an Office 365 tenant (R1-R3), signing
// in (R4) and "associate my account" (R5), against a real graph-emulator.
#include <catch2/catch.hpp>

#include "http/url.hpp"
#include "tests/e2e/office365_fixture.hpp"

using namespace crmsync::e2e;

namespace {

size_t org_count(api_client& api) {
  auto r = api.get(admin_token, "/admin/v1/tenants");
  E2E_REQUIRE_STATUS(r, 200);
  return r.size("/items");
}

} // namespace

TEST_CASE("office365: an administrator installs the app with admin consent",
          "[e2e][office365][install]") {
  office365_env env;

  // GET /o365/install sends the browser to the identity platform.
  auto authorize = env.begin("/o365/install");
  auto parts = split_url(authorize);
  CHECK(parts.origin == env.emulator_url());
  CHECK(parts.target.rfind("/organizations/oauth2/v2.0/authorize?", 0) == 0);
  CHECK(query_param(authorize, "client_id") == "crm");
  CHECK(query_param(authorize, "response_type") == "code");
  CHECK(query_param(authorize, "scope") == "openid profile email");
  CHECK(query_param(authorize, "redirect_uri")
        == env.node_url() + "/o365/signin-callback");
  auto state = query_param(authorize, "state");
  CHECK_FALSE(state.empty());
  CHECK_FALSE(query_param(authorize, "nonce").empty());

  // The admin signs in; the tenant has not consented: admin consent next.
  auto callback = env.at_emulator(authorize, "admin@contoso.com");
  CHECK(split_url(callback).target.rfind("/o365/signin-callback?", 0) == 0);
  CHECK(query_param(callback, "state") == state);
  CHECK_FALSE(query_param(callback, "code").empty());
  auto to_consent = env.open(callback);
  E2E_REQUIRE_STATUS(to_consent, 302);
  auto consent = to_consent.header("Location");
  CHECK(
      split_url(consent).target.rfind("/" + env.tenant() + "/adminconsent?", 0)
      == 0);
  CHECK(query_param(consent, "client_id") == "crm");
  CHECK(query_param(consent, "redirect_uri")
        == env.node_url() + "/o365/consent-callback");
  CHECK_FALSE(query_param(consent, "state").empty());
  CHECK(org_count(env.node()) == 0);

  auto consented = env.at_emulator(consent, "admin@contoso.com");
  CHECK(query_param(consented, "admin_consent") == "True");
  CHECK(query_param(consented, "tenant") == env.tenant());
  auto installed = env.open(consented);

  // R2/R3: a new organization whose super administrator is the admin.
  E2E_REQUIRE_STATUS(installed, 200);
  CHECK(installed.str("/status") == "installed");
  CHECK(installed.boolean("/created"));
  auto org = installed.str("/organization/id");
  CHECK(installed.str("/user/email") == "admin@contoso.com");
  CHECK(installed.str("/user/name") == "Ada Admin");
  CHECK(installed.str("/user/org_id") == org);
  CHECK(installed.boolean("/user/super_admin"));
  CHECK(installed.boolean("/user/manage_users"));
  CHECK(installed.str("/user/profile") == "administrator");
  CHECK(installed.str("/organization/super_admin_id")
        == installed.str("/user/id"));
  auto token = installed.str("/user/token");
  REQUIRE(token.rfind("crm_", 0) == 0);
  auto read = env.node().get(token, org_path(org));
  E2E_REQUIRE_STATUS(read, 200);
  CHECK(read.str("/id") == org);
  CHECK(org_count(env.node()) == 1);

  // Each state works once.
  auto again = env.open(consented);
  E2E_REQUIRE_STATUS(again, 400);
  CHECK(again.error_code() == "invalid_state");
  auto replayed = env.open(callback);
  E2E_REQUIRE_STATUS(replayed, 400);
  CHECK(replayed.error_code() == "invalid_state");
  auto forged = env.node().get("", "/o365/signin-callback?code=x&state=forged");
  E2E_REQUIRE_STATUS(forged, 400);
  CHECK(forged.error_code() == "invalid_state");
  CHECK(env.node()
            .get("", "/o365/consent-callback?admin_consent=True&state=x")
            .error_code()
        == "invalid_state");

  // Installing again: the tenant has consented, so no consent step, and
  // the admin lands in the same organization.
  auto second = env.sign_in("/o365/install", "admin@contoso.com");
  E2E_REQUIRE_STATUS(second.answer, 200);
  CHECK(second.answer.str("/status") == "installed");
  CHECK_FALSE(second.answer.boolean("/created"));
  CHECK(second.answer.str("/organization/id") == org);
  CHECK(second.answer.str("/user/id") == installed.str("/user/id"));
  CHECK(env.node().get(second.token, org_path(org)).status == 200);
  CHECK(org_count(env.node()) == 1);

  auto audit = env.audit_actions(org, token);
  CHECK(count_of(audit, "install") >= 1);
}

TEST_CASE("office365: only an Office 365 administrator can install",
          "[e2e][office365][install]") {
  office365_env env;

  // R1: a user who is not an admin is refused at the sign-in callback.
  auto bob = env.sign_in("/o365/install", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob.answer, 403);
  CHECK(bob.answer.error_code() == "admin_required");

  // The admin signs in, but consent is refused (someone else answered the
  // consent prompt): nothing is created and the tenant did not consent.
  auto admin = env.sign_in("/o365/install", "admin@contoso.com");
  E2E_REQUIRE_STATUS(admin.answer, 302);
  auto refused
      = env.at_emulator(admin.answer.header("Location"), "bob@contoso.com");
  CHECK(query_param(refused, "error") == "access_denied");
  auto answer = env.open(refused);
  E2E_REQUIRE_STATUS(answer, 403);
  CHECK(answer.error_code() == "consent_refused");
  CHECK(org_count(env.node()) == 0);
  auto state = env.emulator().get("", "/_emulator/state");
  E2E_REQUIRE_STATUS(state, 200);
  REQUIRE(state.size("/apps") == 1);
  CHECK(state.size("/apps/0/tenants") == 0);

  // Signing in after the refusal: not a member of anything.
  auto signin = env.sign_in("/o365/signin", "admin@contoso.com");
  E2E_REQUIRE_STATUS(signin.answer, 200);
  CHECK(signin.answer.str("/status") == "not_a_member");
  CHECK(signin.answer.is_null("/organization"));

  // The admin can still install afterwards.
  auto installed = env.install("admin@contoso.com");
  CHECK(installed.answer.boolean("/created"));
  CHECK(org_count(env.node()) == 1);
}

TEST_CASE("office365: installing links the CRM account that has the admin's "
          "e-mail",
          "[e2e][office365][install]") {
  office365_env env;
  // R2: the CRM account exists already (the address differs in case only).
  auto existing = create_org(env.node(), "Contoso CRM", "Admin@Contoso.com",
                             "paid", "admin-password-1");
  REQUIRE(org_count(env.node()) == 1);

  auto installed = env.install("admin@contoso.com");
  CHECK_FALSE(installed.answer.boolean("/created"));
  CHECK(installed.answer.str("/organization/id") == existing.id);
  CHECK(installed.answer.str("/organization/name") == "Contoso CRM");
  CHECK(installed.answer.str("/user/id") == existing.admin_id);
  CHECK(installed.answer.boolean("/user/has_password"));
  CHECK(org_count(env.node()) == 1);
  // The log says the account was found by the admin's e-mail.
  auto audit = env.node().get(installed.token,
                              "/api/v1/orgs/" + existing.id + "/audit");
  E2E_REQUIRE_STATUS(audit, 200);
  REQUIRE(audit.size("/items") >= 1);
  CHECK(audit.str("/items/0/action") == "install");
  CHECK(audit.str("/items/0/detail")
            .find("found by the administrator's "
                  "sign-in name")
        != std::string::npos);
  CHECK(env.node().get(installed.token, org_path(existing.id)).status == 200);
  // The account is now the tenant's: its users can be listed from Graph.
  auto users = env.node().get(installed.token, "/api/v1/orgs/" + existing.id
                                                   + "/office365/users");
  E2E_REQUIRE_STATUS(users, 200);
  CHECK(users.size("/items") == 3);

  // And the admin signs in as that user from now on.
  auto signin = env.sign_in("/o365/signin", "admin@contoso.com");
  E2E_REQUIRE_STATUS(signin.answer, 200);
  CHECK(signin.answer.str("/status") == "member");
  CHECK(signin.answer.str("/user/id") == existing.admin_id);
}

TEST_CASE("office365: an install survives node restarts between its steps",
          "[e2e][office365][install][restart]") {
  office365_env::options opts;
  opts.public_url = "https://crm.example.test";
  office365_env env{opts};

  auto authorize = env.begin("/o365/install");
  CHECK(query_param(authorize, "redirect_uri")
        == "https://crm.example.test/o365/signin-callback");
  env.restart_node();
  auto callback = env.at_emulator(authorize, "admin@contoso.com");
  env.restart_node();
  auto to_consent = env.open(callback);
  E2E_REQUIRE_STATUS(to_consent, 302);
  auto consent = to_consent.header("Location");
  CHECK(query_param(consent, "redirect_uri")
        == "https://crm.example.test/o365/consent-callback");
  env.restart_node();
  auto consented = env.at_emulator(consent, "admin@contoso.com");
  env.restart_node();
  auto installed = env.open(consented);
  E2E_REQUIRE_STATUS(installed, 200);
  CHECK(installed.boolean("/created"));
  auto org = installed.str("/organization/id");
  auto token = installed.str("/user/token");

  // A state used before the restart stays used after it.
  env.restart_node();
  CHECK(env.open(consented).error_code() == "invalid_state");
  CHECK(env.node().get(token, org_path(org)).status == 200);
  auto signin = env.sign_in("/o365/signin", "admin@contoso.com");
  E2E_REQUIRE_STATUS(signin.answer, 200);
  CHECK(signin.answer.str("/status") == "member");
  CHECK(signin.answer.str("/organization/id") == org);
  CHECK(org_count(env.node()) == 1);
}

TEST_CASE("office365: signing in answers a member's token or a session",
          "[e2e][office365][signin]") {
  office365_env env;
  auto installed = env.install("admin@contoso.com");
  auto org = installed.answer.str("/organization/id");

  // R4: the admin is a CRM user.
  auto admin = env.sign_in("/o365/signin", "admin@contoso.com");
  E2E_REQUIRE_STATUS(admin.answer, 200);
  CHECK(admin.answer.str("/status") == "member");
  CHECK(admin.answer.str("/organization/id") == org);
  CHECK(admin.answer.str("/user/id") == installed.answer.str("/user/id"));
  CHECK_FALSE(admin.answer.has("/office365_session"));
  CHECK(env.node().get(admin.token, org_path(org)).status == 200);

  // Bob is not: he gets a session and is told which organization exists.
  auto bob = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob.answer, 200);
  CHECK(bob.answer.str("/status") == "not_a_member");
  CHECK(bob.answer.str("/organization/id") == org);
  CHECK(bob.answer.str("/organization/name")
        == installed.answer.str("/organization/name"));
  CHECK(bob.session.rfind("o365_", 0) == 0);
  CHECK_FALSE(bob.answer.has("/user"));
  CHECK_FALSE(bob.answer.has("/invite_accept_url"));
  CHECK(bob.answer.str("/office365_user/email") == "bob@contoso.com");
  CHECK(bob.answer.str("/office365_user/tenant_id") == env.tenant());
  CHECK(bob.answer.str("/office365_user/user_id")
        == env.o365_id("bob@contoso.com"));
  // The session is not an API token.
  CHECK(env.node().get(bob.session, org_path(org)).status == 401);

  // Carol has no mailbox: her UPN is her address.
  auto carol = env.sign_in("/o365/signin", "carol@contoso.com");
  E2E_REQUIRE_STATUS(carol.answer, 200);
  CHECK(carol.answer.str("/office365_user/email") == "carol@contoso.com");

  // Someone of a tenant that never installed the app.
  std::map<std::string, std::string> ids;
  env.seed_tenant("fabrikam.com", {{"dave@fabrikam.com", "Dave", true, true}},
                  ids);
  auto dave = env.sign_in("/o365/signin", "dave@fabrikam.com");
  E2E_REQUIRE_STATUS(dave.answer, 200);
  CHECK(dave.answer.str("/status") == "not_a_member");
  CHECK(dave.answer.is_null("/organization"));
  auto join = env.node().post(dave.session, "/api/v1/join-requests", "{}");
  E2E_REQUIRE_STATUS(join, 404);
  CHECK(join.error_code() == "organization_not_found");
}

TEST_CASE("office365: associate my account links an identity to a CRM "
          "account with another e-mail",
          "[e2e][office365][associate]") {
  office365_env env;
  env.install("admin@contoso.com");
  auto elsewhere = create_org(env.node(), "Elsewhere", "boss@elsewhere.example",
                              "free", "boss-password-1");
  auto robert = create_user(env.node(), elsewhere.admin_token, elsewhere.id,
                            "robert@elsewhere.example", "Robert", "standard",
                            false, "robert-password-1");
  auto session = env.session_of("bob@contoso.com");
  auto associate = [&](std::string_view token, std::string_view email,
                       std::string_view password) {
    return env.node().post(token, "/o365/associate",
                           "{\"email\":" + json_str(email)
                               + ",\"password\":" + json_str(password) + "}");
  };

  auto none = associate("", "robert@elsewhere.example", "robert-password-1");
  E2E_REQUIRE_STATUS(none, 401);
  CHECK(none.error_code() == "missing_session");
  auto bogus = associate("o365_bogus", "robert@elsewhere.example",
                         "robert-password-1");
  E2E_REQUIRE_STATUS(bogus, 401);
  CHECK(bogus.error_code() == "invalid_session");
  // A user's API token is not a session either.
  CHECK(associate(robert.token, "robert@elsewhere.example", "robert-password-1")
            .error_code()
        == "invalid_session");
  auto wrong = associate(session, "robert@elsewhere.example", "not-his");
  E2E_REQUIRE_STATUS(wrong, 401);
  CHECK(wrong.error_code() == "invalid_credentials");
  auto unknown = associate(session, "nobody@elsewhere.example", "whatever-1");
  E2E_REQUIRE_STATUS(unknown, 401);
  CHECK(unknown.error_code() == "invalid_credentials");
  // An account without a password cannot be proved: no password matches
  // it, and an empty one is not a password at all.
  create_user(env.node(), elsewhere.admin_token, elsewhere.id,
              "nopw@elsewhere.example", "Nopw");
  auto no_password
      = associate(session, "nopw@elsewhere.example", "any-password-1");
  E2E_REQUIRE_STATUS(no_password, 401);
  CHECK(no_password.error_code() == "invalid_credentials");
  auto empty = associate(session, "nopw@elsewhere.example", "");
  E2E_REQUIRE_STATUS(empty, 400);
  CHECK(empty.error_code() == "invalid_field");
  CHECK(empty.error_field() == "password");

  auto linked
      = associate(session, "ROBERT@elsewhere.example", "robert-password-1");
  E2E_REQUIRE_STATUS(linked, 200);
  CHECK(linked.str("/status") == "associated");
  CHECK(linked.str("/user/id") == robert.id);
  CHECK(linked.str("/user/org_id") == elsewhere.id);
  CHECK(linked.str("/user/email") == "robert@elsewhere.example");
  auto token = linked.str("/user/token");
  CHECK(env.node().get(token, user_path(elsewhere.id, robert.id)).status
        == 200);

  // From now on Bob signs in as Robert's account.
  auto bob = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob.answer, 200);
  CHECK(bob.answer.str("/status") == "member");
  CHECK(bob.answer.str("/organization/id") == elsewhere.id);
  CHECK(bob.answer.str("/user/id") == robert.id);
  CHECK(count_of(env.audit_actions(elsewhere.id, elsewhere.admin_token),
                 "account.associated")
        == 1);
}

TEST_CASE("office365: two installs racing make one organization",
          "[e2e][office365][install][race]") {
  office365_env env;
  // Two browser tabs reach the consent callback at the same moment.
  std::vector<std::string> consent_urls;
  for (int i = 0; i < 2; ++i) {
    auto tab = env.sign_in("/o365/install", "admin@contoso.com");
    E2E_REQUIRE_STATUS(tab.answer, 302);
    consent_urls.push_back(tab.answer.header("Location"));
  }
  std::vector<race_request> finish;
  for (auto& url : consent_urls) {
    auto consented = env.at_emulator(url, "admin@contoso.com");
    finish.push_back({"GET", split_url(consented).target, "", ""});
  }
  auto raced
      = send_at_once(env.node().port(), finish, env.node_process().cookies());
  std::vector<bool> created;
  std::vector<std::string> orgs;
  for (size_t i = 0; i < 2; ++i) {
    INFO(raced.errors[i]);
    E2E_REQUIRE_STATUS(raced.results[i], 200);
    created.push_back(raced.results[i].boolean("/created"));
    orgs.push_back(raced.results[i].str("/organization/id"));
  }
  CHECK(created[0] != created[1]);
  CHECK(orgs[0] == orgs[1]);
  CHECK(org_count(env.node()) == 1);
}

TEST_CASE("office365: consent for another tenant than the one signed in is "
          "refused",
          "[e2e][office365][install]") {
  office365_env env;
  auto first = env.sign_in("/o365/install", "admin@contoso.com");
  E2E_REQUIRE_STATUS(first.answer, 302);
  auto state = query_param(first.answer.header("Location"), "state");
  auto forged
      = env.node().get("", "/o365/consent-callback?admin_consent=True&tenant="
                           "00000000-0000-0000-0000-000000000001&state="
                               + crmsync::http::percent_encode(state));
  E2E_REQUIRE_STATUS(forged, 400);
  CHECK(forged.error_code() == "tenant_mismatch");
  CHECK(org_count(env.node()) == 0);
  // A sign-in state is not a consent state.
  auto signin = env.begin("/o365/install");
  auto as_consent = env.node().get(
      "", "/o365/consent-callback?admin_consent=True&tenant=" + env.tenant()
              + "&state="
              + crmsync::http::percent_encode(query_param(signin, "state")));
  E2E_REQUIRE_STATUS(as_consent, 400);
  CHECK(as_consent.error_code() == "invalid_state");
  CHECK(org_count(env.node()) == 0);
}

TEST_CASE("office365: an admin who associated their account installs into "
          "its organization",
          "[e2e][office365][install][associate]") {
  office365_env env;
  // The admin's CRM account has another address than their Office 365 one.
  auto crm = create_org(env.node(), "Ada's CRM", "ada@crm.example", "paid",
                        "ada-password-1");
  auto session = env.session_of("admin@contoso.com");
  auto linked = env.node().post(
      session, "/o365/associate",
      R"({"email":"ada@crm.example","password":"ada-password-1"})");
  E2E_REQUIRE_STATUS(linked, 200);
  CHECK(linked.str("/user/id") == crm.admin_id);

  // Install: the tenant consents, and the app lands in that organization
  // instead of trying (and failing, over and over) to make a new one.
  auto installed = env.install("admin@contoso.com");
  CHECK_FALSE(installed.answer.boolean("/created"));
  CHECK(installed.answer.str("/organization/id") == crm.id);
  CHECK(installed.answer.str("/user/id") == crm.admin_id);
  CHECK(installed.answer.str("/user/email") == "ada@crm.example");
  CHECK(org_count(env.node()) == 1);
  // The organization is the tenant's now: Office 365 users list, and a
  // colleague who signs in is offered it.
  CHECK(env.node()
            .get(installed.token, "/api/v1/orgs/" + crm.id + "/office365/users")
            .status
        == 200);
  auto bob = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob.answer, 200);
  CHECK(bob.answer.str("/organization/id") == crm.id);
  CHECK(count_of(env.audit_actions(crm.id, crm.admin_token), "install") == 1);
  // Installing took a handful of tenant activations, not an endless stream.
  auto actors = env.node().get(admin_token, "/admin/v1/actors");
  E2E_REQUIRE_STATUS(actors, 200);
  INFO(actors.body);
  for (size_t i = 0; i < actors.size("/kinds"); ++i)
    if (actors.str("/kinds/" + std::to_string(i) + "/kind") == "tenant")
      CHECK(actors.u64("/kinds/" + std::to_string(i) + "/activations") < 10);
}

namespace {

/// authorization_code requests the emulator's token endpoint has seen.
uint64_t code_redemptions(office365_env& env) {
  auto state = env.emulator().get("", "/_emulator/state");
  E2E_REQUIRE_STATUS(state, 200);
  return state.u64("/code_redemptions");
}

/// The install's audit entries (action, detail) of `org`.
std::vector<std::pair<std::string, std::string>>
audit_entries(office365_env& env, std::string_view org,
              std::string_view token) {
  auto r = env.node().get(token, "/api/v1/orgs/" + std::string{org} + "/audit");
  E2E_REQUIRE_STATUS(r, 200);
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < r.size("/items"); ++i) {
    auto base = "/items/" + std::to_string(i);
    out.emplace_back(r.str(base + "/action"), r.str(base + "/detail"));
  }
  return out;
}

} // namespace

TEST_CASE("office365: a sign-in finishes only in the browser that started it",
          "[e2e][office365][signin][security]") {
  office365_env env;
  auto& browser = env.node();
  auto authorize = env.begin("/o365/signin");
  // The start binds the flow to this browser with a cookie.
  auto cookie = browser.cookies().get("crmsync_signin");
  REQUIRE(cookie.size() == 32);
  auto start = browser.get("", "/o365/install");
  E2E_REQUIRE_STATUS(start, 302);
  auto set = start.header("Set-Cookie");
  CHECK(set.find("crmsync_signin=" + cookie + ";") == 0); // one per browser
  CHECK(set.find("; HttpOnly") != std::string::npos);
  CHECK(set.find("; SameSite=Lax") != std::string::npos);
  CHECK(set.find("; Path=/;") != std::string::npos);
  CHECK(set.find("Secure") == std::string::npos); // public URL is http

  // Another browser (no cookie, a wrong one, junk) opening the callback is
  // refused before the node asks the token endpoint for anything.
  auto callback = env.at_emulator(authorize, "bob@contoso.com");
  auto target = split_url(callback).target;
  api_client other{env.node().port()};
  auto none = other.get("", target);
  E2E_REQUIRE_STATUS(none, 400);
  CHECK(none.error_code() == "browser_mismatch");
  CHECK_FALSE(none.has("/office365_session"));
  // The state is spent: the right browser starts again.
  CHECK(browser.get("", target).error_code() == "invalid_state");
  for (auto forged : {std::string(32, 'A'), std::string{"junk"}}) {
    other.cookies().set("crmsync_signin", forged);
    auto again = env.at_emulator(env.begin("/o365/signin"), "bob@contoso.com");
    auto refused = other.get("", split_url(again).target);
    E2E_REQUIRE_STATUS(refused, 400);
    CHECK(refused.error_code() == "browser_mismatch");
  }
  CHECK(code_redemptions(env) == 0);

  // Admin consent comes back to the same browser too.
  auto install = env.sign_in("/o365/install", "admin@contoso.com");
  E2E_REQUIRE_STATUS(install.answer, 302);
  CHECK(code_redemptions(env) == 1);
  auto consented
      = env.at_emulator(install.answer.header("Location"), "admin@contoso.com");
  auto stolen = other.get("", split_url(consented).target);
  E2E_REQUIRE_STATUS(stolen, 400);
  CHECK(stolen.error_code() == "browser_mismatch");
  CHECK_FALSE(stolen.has("/user/token"));
  CHECK(org_count(env.node()) == 0);

  // The browser that started a sign-in finishes it.
  auto bob = env.sign_in("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob.answer, 200);
  CHECK(bob.answer.str("/status") == "not_a_member");
  CHECK(code_redemptions(env) == 2);
}

TEST_CASE("office365: the sign-in cookie is Secure behind an https public URL",
          "[e2e][office365][signin][security]") {
  office365_env::options opts;
  opts.public_url = "https://crm.example.test";
  office365_env env{opts};
  auto start = env.node().get("", "/o365/signin");
  E2E_REQUIRE_STATUS(start, 302);
  auto set = start.header("Set-Cookie");
  CHECK(set.find("crmsync_signin=") == 0);
  CHECK(set.find("; Secure") != std::string::npos);
  CHECK(set.find("; HttpOnly") != std::string::npos);
}

TEST_CASE("office365: the unverified email claim never links an account",
          "[e2e][office365][install][security]") {
  office365_env env;
  auto victim = create_org(env.node(), "Acme", "boss@acme.example", "paid",
                           "boss-password-1");
  // An admin of another tenant whose sign-in name is not an address, with
  // the victim's address typed in as their mail (the `email` claim).
  auto seeded = env.emulator().post(
      "", "/_emulator/tenants",
      R"({"domain":"mallory.example","users":[{"userPrincipalName":)"
      R"("mallory@intranet","displayName":"Mallory","isAdmin":true,)"
      R"("mail":"boss@acme.example"}]})");
  E2E_REQUIRE_STATUS(seeded, 201);

  auto install = env.sign_in("/o365/install", "mallory@intranet");
  E2E_REQUIRE_STATUS(install.answer, 400);
  CHECK(install.answer.error_code() == "no_email");
  auto signin = env.sign_in("/o365/signin", "mallory@intranet");
  E2E_REQUIRE_STATUS(signin.answer, 400);
  CHECK(signin.answer.error_code() == "no_email");

  // Acme is untouched: not linked to any tenant, no install in its log,
  // and its admin is still its only user.
  auto users = env.node().get(victim.admin_token,
                              "/api/v1/orgs/" + victim.id + "/office365/users");
  E2E_REQUIRE_STATUS(users, 409);
  CHECK(users.error_code() == "office365_not_installed");
  CHECK(count_of(env.audit_actions(victim.id, victim.admin_token), "install")
        == 0);
  CHECK(walk_pages(env.node(), victim.admin_token, users_path(victim.id), 50)
            .size()
        == 1);
  CHECK(org_count(env.node()) == 1);
}

TEST_CASE("office365: an organization linked to one tenant is never re-linked "
          "to another by a sign-in",
          "[e2e][office365][install][security]") {
  office365_env env;
  auto contoso = env.install_paid();
  // A CRM user of Contoso's organization whose address is an admin's of
  // another tenant, and another one whose account that admin can prove.
  create_user(env.node(), contoso.token, contoso.id, "eve@fabrikam.com", "Eve",
              "administrator", true);
  create_user(env.node(), contoso.token, contoso.id, "frank@crm.example",
              "Frank", "standard", false, "frank-password-1");
  std::map<std::string, std::string> ids;
  env.seed_tenant("fabrikam.com",
                  {{"eve@fabrikam.com", "Eve", true, true},
                   {"frank@fabrikam.com", "Frank", true, true}},
                  ids);

  // By e-mail: refused, and said so in the organization's audit log.
  auto eve = env.sign_in("/o365/install", "eve@fabrikam.com");
  if (eve.answer.status == 302) // fabrikam has not consented yet
    eve.answer = env.open(
        env.at_emulator(eve.answer.header("Location"), "eve@fabrikam.com"));
  E2E_REQUIRE_STATUS(eve.answer, 409);
  CHECK(eve.answer.error_code() == "office365_link_conflict");

  // By association (Frank proves his CRM password, then installs): refused
  // as well, and the install ends instead of looping.
  auto session = env.session_of("frank@fabrikam.com");
  auto linked = env.node().post(
      session, "/o365/associate",
      R"({"email":"frank@crm.example","password":"frank-password-1"})");
  E2E_REQUIRE_STATUS(linked, 200);
  auto frank = env.sign_in("/o365/install", "frank@fabrikam.com");
  E2E_REQUIRE_STATUS(frank.answer, 409);
  CHECK(frank.answer.error_code() == "office365_link_conflict");

  // Contoso's organization stays Contoso's.
  auto users = env.node().get(contoso.token, "/api/v1/orgs/" + contoso.id
                                                 + "/office365/users");
  E2E_REQUIRE_STATUS(users, 200);
  CHECK(users.size("/items") == 3);
  auto bob = env.sign_in("/o365/signin", "bob@contoso.com");
  CHECK(bob.answer.str("/organization/id") == contoso.id);
  auto audit = audit_entries(env, contoso.id, contoso.token);
  size_t refusals = 0;
  for (auto& [action, detail] : audit)
    if (action == "install.refused") {
      ++refusals;
      CHECK(detail.find("stays linked to Office 365 tenant " + env.tenant())
            != std::string::npos);
    }
  CHECK(refusals == 2);
  // Eve was not linked to the CRM user with her address.
  auto again = env.sign_in("/o365/signin", "eve@fabrikam.com");
  E2E_REQUIRE_STATUS(again.answer, 200);
  CHECK(again.answer.str("/status") == "not_a_member");
  CHECK(org_count(env.node()) == 1);
}
