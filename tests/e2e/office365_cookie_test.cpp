// End-to-end: the browser pages with cookie sessions (issue 14) against a
// real graph-emulator and crmsyncd: the install's terms and "Associate my
// account", the invitation page, the request to join and the approvers'
// page. Each browser is a client with its own cookies; forms are posted the
// way a browser posts them.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <thread>

#include "http/url.hpp"
#include "tests/e2e/office365_fixture.hpp"

using namespace crmsync::e2e;
using crmsync::http::percent_encode;

namespace {

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

/// One person's browser: its own cookies; follows redirects to the node
/// and signs in at the emulator as `upn` when sent there.
class browser {
public:
  explicit browser(office365_env& env)
      : env_(env), client_(env.node().port()) {}

  api_response get(const std::string& target) {
    return client_.request("GET", target, "", {}, "",
                           {{"Accept", browser_accept}});
  }

  api_response post(const std::string& target, const std::string& form) {
    return client_.request("POST", target, "", form,
                           "application/x-www-form-urlencoded",
                           {{"Accept", browser_accept}});
  }

  /// Follows the redirects of `r` (at most 10), signing in as `upn`.
  api_response follow(api_response r, std::string_view upn) {
    for (int i = 0; i < 10 && r.status >= 300 && r.status < 400; ++i) {
      auto location = r.header("Location");
      auto parts = split_url(location);
      if (parts.origin == env_.emulator_url())
        parts = split_url(env_.at_emulator(location, upn));
      INFO("redirected to " << location);
      REQUIRE(parts.origin == env_.public_url());
      r = get(parts.target);
    }
    return r;
  }

  /// GET `target` and follow where it leads.
  api_response open(const std::string& target, std::string_view upn) {
    return follow(get(target), upn);
  }

  crmsync::e2e::cookie_jar& cookies() {
    return client_.cookies();
  }

private:
  office365_env& env_;
  api_client client_;
};

std::string credentials_form(const std::string& csrf, std::string_view email,
                             std::string_view password) {
  return "csrf=" + csrf + "&email=" + percent_encode(email)
         + "&password=" + percent_encode(password);
}

void check_page(const api_response& r) {
  CHECK(r.header("Content-Type").rfind("text/html", 0) == 0);
  CHECK(contains(r.header("Content-Security-Policy"), "default-src 'none'"));
  CHECK(r.header("Cache-Control") == "no-store");
  CHECK_FALSE(contains(r.body, "<script"));
}

} // namespace

TEST_CASE("office365 cookie pages: a browser's sign-in is an HttpOnly cookie, "
          "and the install's forms need its CSRF token",
          "[e2e][office365][pages][cookie]") {
  office365_env env;
  browser admin{env};
  auto start = admin.get("/o365/install");
  E2E_REQUIRE_STATUS(start, 302);
  auto callback
      = env.at_emulator(start.header("Location"), "admin@contoso.com");
  auto signed_in = admin.get(split_url(callback).target);
  E2E_REQUIRE_STATUS(signed_in, 303);
  auto set = signed_in.header("Set-Cookie");
  INFO("Set-Cookie: " << set);
  auto cookie = admin.cookies().get("crmsync_session");
  REQUIRE(cookie.size() == 43);
  CHECK(set.rfind("crmsync_session=" + cookie + ";", 0) == 0);
  CHECK(contains(set, "; HttpOnly"));
  CHECK(contains(set, "; SameSite=Lax"));
  CHECK(contains(set, "; Path=/;"));
  CHECK(contains(set, "; Max-Age="));
  CHECK_FALSE(contains(set, "Secure")); // the public URL is http
  // The session goes in the cookie, never in the URL.
  auto next = signed_in.header("Location");
  CHECK(next == env.public_url() + "/o365/install/terms");

  auto terms = admin.get("/o365/install/terms");
  E2E_REQUIRE_STATUS(terms, 200);
  check_page(terms);
  CHECK(contains(terms.body, "Terms and conditions"));
  CHECK(contains(terms.body, "Accept and continue"));
  CHECK(contains(terms.body, "Associate my account"));
  // Its forms lead on to admin consent: browsers hold form-action through
  // that redirect, so the identity platform's origin is allowed, and only
  // it.
  CHECK(terms.header("Content-Security-Policy")
        == "default-src 'none'; form-action 'self' " + env.emulator_url()
               + "; frame-ancestors 'none'");
  auto csrf = csrf_in(terms.body);

  // Forms without the session's CSRF token, or without the session.
  for (auto form : {std::string{}, std::string{"csrf="},
                    std::string{"csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}) {
    INFO("form: " << form);
    auto refused = admin.post("/o365/install/accept", form);
    E2E_REQUIRE_STATUS(refused, 403);
    check_page(refused);
    CHECK(contains(refused.body, "invalid_csrf_token"));
  }
  browser stranger{env};
  auto no_session = stranger.post("/o365/install/accept", "csrf=" + csrf);
  E2E_REQUIRE_STATUS(no_session, 401);
  check_page(no_session);
  // Bob's own session does not take the admin's token, and Bob, no Office
  // 365 administrator, gets no install.
  auto bob_terms = stranger.open("/o365/install", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob_terms, 403);
  CHECK(contains(bob_terms.body, "admin_required"));
  auto bob_post = stranger.post("/o365/install/accept", "csrf=" + csrf);
  E2E_REQUIRE_STATUS(bob_post, 403);
  CHECK(contains(bob_post.body, "invalid_csrf_token"));
  // Nothing was installed by any of that.
  auto bob_me = stranger.get("/o365/me");
  E2E_REQUIRE_STATUS(bob_me, 200);
  CHECK(contains(bob_me.body, "nobody installed the app"));

  // Accepting goes on to admin consent, then says what happened.
  auto accepted = admin.post("/o365/install/accept", "csrf=" + csrf);
  E2E_REQUIRE_STATUS(accepted, 302);
  auto installed = admin.follow(accepted, "admin@contoso.com");
  E2E_REQUIRE_STATUS(installed, 200);
  check_page(installed);
  CHECK(contains(installed.body, "crmsync is installed"));
  CHECK(contains(installed.body, "A new CRM organization was created"));

  // A program's sign-in is the JSON of before: a token, no cookie session.
  auto program = env.sign_in("/o365/signin", "admin@contoso.com");
  E2E_REQUIRE_STATUS(program.answer, 200);
  CHECK(program.answer.header("Content-Type").rfind("application/json", 0)
        == 0);
  CHECK(program.answer.str("/status") == "member");
  CHECK_FALSE(program.token.empty());
  CHECK(env.node().cookies().get("crmsync_session").empty());
}

TEST_CASE("office365 cookie pages: the session cookie is Secure behind an "
          "https public URL",
          "[e2e][office365][pages][cookie]") {
  office365_env::options opts;
  opts.public_url = "https://crm.example.test";
  office365_env env{opts};
  browser admin{env};
  auto start = admin.get("/o365/signin");
  E2E_REQUIRE_STATUS(start, 302);
  auto callback = env.at_emulator(start.header("Location"), "bob@contoso.com");
  auto signed_in = admin.get(split_url(callback).target);
  E2E_REQUIRE_STATUS(signed_in, 303);
  auto set = signed_in.header("Set-Cookie");
  INFO("Set-Cookie: " << set);
  // At the root of an https site: a __Host- cookie (Secure, Path=/, no
  // Domain), which no other site or path can set.
  CHECK(set.rfind("__Host-crmsync_session=", 0) == 0);
  CHECK(contains(set, "; Secure"));
  CHECK(contains(set, "; HttpOnly"));
  CHECK(contains(set, "; Path=/;"));
  CHECK_FALSE(contains(set, "Domain"));
  CHECK(signed_in.header("Location") == "https://crm.example.test/o365/me");
  auto cookie = admin.cookies().get("__Host-crmsync_session");
  REQUIRE(cookie.size() == 43);

  // The session cookie sent twice (one planted beside the real one): a
  // 400 page, in either order, on any page.
  auto with_cookies = [&](const std::string& target,
                          const std::string& header) {
    api_client plain{env.node().port()};
    return plain.request("GET", target, "", "", "",
                         {{"Accept", browser_accept}, {"Cookie", header}});
  };
  auto planted = std::string{"__Host-crmsync_session="} + std::string(43, 'A');
  auto real = "__Host-crmsync_session=" + cookie;
  E2E_REQUIRE_STATUS(with_cookies("/o365/me", real), 200);
  for (auto header : {planted + "; " + real, real + "; " + planted}) {
    auto refused = with_cookies("/o365/me", header);
    E2E_REQUIRE_STATUS(refused, 400);
    check_page(refused);
    CHECK(contains(refused.body, "duplicate_session_cookie"));
  }
  auto invite = with_cookies("/invite/abc", planted + "; " + real);
  E2E_REQUIRE_STATUS(invite, 400);
}

TEST_CASE("office365 cookie pages: associate my account, then install",
          "[e2e][office365][pages][cookie]") {
  office365_env env;
  auto acme = create_org(env.node(), "Acme", "boss@acme.example", "free",
                         "boss-password-1");
  browser admin{env};
  auto terms = admin.open("/o365/install", "admin@contoso.com");
  E2E_REQUIRE_STATUS(terms, 200);
  auto csrf = csrf_in(terms.body);
  auto wrong = admin.post("/o365/install/associate",
                          credentials_form(csrf, "boss@acme.example", "nope"));
  E2E_REQUIRE_STATUS(wrong, 401);
  check_page(wrong);
  CHECK(contains(wrong.body, "invalid_credentials"));
  auto no_csrf = admin.post(
      "/o365/install/associate",
      credentials_form("", "boss@acme.example", "boss-password-1"));
  E2E_REQUIRE_STATUS(no_csrf, 403);

  auto associated = admin.post(
      "/o365/install/associate",
      credentials_form(csrf, "boss@acme.example", "boss-password-1"));
  auto installed = admin.follow(associated, "admin@contoso.com");
  E2E_REQUIRE_STATUS(installed, 200);
  check_page(installed);
  CHECK(contains(installed.body, "crmsync is installed"));
  CHECK(contains(installed.body, "linked to your existing CRM organization"));
  CHECK(contains(installed.body, acme.id));
  // The organization is Acme, linked to contoso's tenant.
  auto org = env.node().get(acme.admin_token, "/api/v1/orgs/" + acme.id);
  E2E_REQUIRE_STATUS(org, 200);
  auto me = admin.get("/o365/me");
  E2E_REQUIRE_STATUS(me, 200);
  CHECK(contains(me.body, "You are a user of <b>Acme</b>"));
}

TEST_CASE("office365 cookie pages: a standard user's account does not link "
          "its organization to Office 365 (page and JSON)",
          "[e2e][office365][pages][cookie][associate]") {
  office365_env env;
  auto acme = create_org(env.node(), "Acme", "boss@acme.example", "free",
                         "boss-password-1");
  auto sam
      = create_user(env.node(), acme.admin_token, acme.id, "sam@acme.example",
                    "Sam", "standard", false, "sam-password-1");
  auto unlinked = [&] {
    auto org = env.node().get(acme.admin_token, "/api/v1/orgs/" + acme.id);
    E2E_REQUIRE_STATUS(org, 200);
    return org.is_null("/office365_tenant_id");
  };
  auto sam_unlinked = [&] {
    auto u = env.node().get(acme.admin_token, user_path(acme.id, sam.id));
    E2E_REQUIRE_STATUS(u, 200);
    return u.is_null("/office365_user_id");
  };

  // The page: refused before anything is associated.
  browser admin{env};
  auto terms = admin.open("/o365/install", "admin@contoso.com");
  E2E_REQUIRE_STATUS(terms, 200);
  auto refused
      = admin.post("/o365/install/associate",
                   credentials_form(csrf_in(terms.body), "sam@acme.example",
                                    "sam-password-1"));
  E2E_REQUIRE_STATUS(refused, 403);
  check_page(refused);
  CHECK(contains(refused.body, "admin_required"));
  CHECK(unlinked());
  CHECK(sam_unlinked());

  // JSON: associated as Sam (allowed), the install is refused by the
  // organization itself.
  auto session = env.session_of("admin@contoso.com");
  auto associated = env.node().post(
      session, "/o365/associate",
      R"({"email":"sam@acme.example","password":"sam-password-1"})");
  E2E_REQUIRE_STATUS(associated, 200);
  auto install = env.sign_in("/o365/install", "admin@contoso.com");
  if (install.answer.status == 302) // admin consent first
    install.answer = env.open(env.at_emulator(install.answer.header("Location"),
                                              "admin@contoso.com"));
  E2E_REQUIRE_STATUS(install.answer, 403);
  CHECK(install.answer.error_code() == "admin_required");
  CHECK(unlinked());
}

TEST_CASE("office365 cookie pages: an invitation is joined or associated on "
          "its page, used, superseded and not-for-you get clear pages",
          "[e2e][office365][pages][cookie][invite]") {
  office365_env::options opts;
  opts.extra_users = 2;
  office365_env env{opts};
  auto org = env.install_paid();
  auto bob_id = env.o365_id("bob@contoso.com");
  auto u1 = env.o365_id("user01@contoso.com");
  expect_status(env.invite(org.token, org.id, {bob_id}), 201);
  expect_status(env.invite(org.token, org.id, {u1}), 201);
  auto mail = env.wait_for_mail("admin@contoso.com", 2);
  std::string bob_token, u1_token;
  for (auto& m : mail)
    (m.to == "bob@contoso.com" ? bob_token : u1_token)
        = invite_token_in(m, env.public_url());
  REQUIRE_FALSE(bob_token.empty());
  REQUIRE_FALSE(u1_token.empty());

  // Someone else opens Bob's link: signed in as themselves, told so.
  browser user02{env};
  auto other = user02.open("/invite/" + bob_token, "user02@contoso.com");
  E2E_REQUIRE_STATUS(other, 403);
  check_page(other);
  CHECK(contains(other.body, "This invitation is for someone else"));
  CHECK_FALSE(contains(other.body, "Accept the terms and join"));
  // Their session's form token does not let them join either.
  auto me = user02.get("/o365/me");
  auto their_csrf = csrf_in(me.body);
  auto stolen
      = user02.post("/invite/" + bob_token + "/join", "csrf=" + their_csrf);
  E2E_REQUIRE_STATUS(stolen, 403);
  CHECK(contains(stolen.body, "not_invitee"));

  // Bob: the invitation with the terms, Join and Associate my account.
  browser bob{env};
  auto page = bob.open("/invite/" + bob_token, "bob@contoso.com");
  E2E_REQUIRE_STATUS(page, 200);
  check_page(page);
  CHECK(contains(page.body, "Terms and conditions"));
  CHECK(contains(page.body, "Accept the terms and join"));
  CHECK(contains(page.body, "Associate my account"));
  auto csrf = csrf_in(page.body);
  auto forged = bob.post("/invite/" + bob_token + "/join", "csrf=x");
  E2E_REQUIRE_STATUS(forged, 403);
  CHECK(contains(forged.body, "invalid_csrf_token"));
  auto joined = bob.post("/invite/" + bob_token + "/join", "csrf=" + csrf);
  E2E_REQUIRE_STATUS(joined, 201);
  check_page(joined);
  CHECK(contains(joined.body, "You joined the organization"));
  auto used = bob.get("/invite/" + bob_token);
  E2E_REQUIRE_STATUS(used, 410);
  CHECK(contains(used.body, "This invitation was already used"));

  // user01 associates an account of another organization.
  auto elsewhere = create_org(env.node(), "Elsewhere", "boss@elsewhere.example",
                              "free", "boss-password-1");
  browser user01{env};
  auto invited = user01.open("/invite/" + u1_token, "user01@contoso.com");
  E2E_REQUIRE_STATUS(invited, 200);
  auto associated = user01.post("/invite/" + u1_token + "/associate",
                                credentials_form(csrf_in(invited.body),
                                                 "boss@elsewhere.example",
                                                 "boss-password-1"));
  E2E_REQUIRE_STATUS(associated, 200);
  CHECK(contains(associated.body, "associated with your CRM account"));

  // A newer invitation supersedes user02's first one.
  auto u2 = env.o365_id("user02@contoso.com");
  expect_status(env.invite(org.token, org.id, {u2}), 201);
  auto first_mail = env.wait_for_mail("admin@contoso.com", 3);
  auto first = invite_token_in(first_mail.back(), env.public_url());
  expect_status(env.invite(org.token, org.id, {u2}), 201);
  env.wait_for_mail("admin@contoso.com", 4);
  auto superseded = user02.get("/invite/" + first);
  E2E_REQUIRE_STATUS(superseded, 410);
  CHECK(contains(superseded.body, "A newer invitation replaced this one"));
  // A JSON client of the link still gets its redirect to the sign-in.
  auto program = env.node().get("", "/invite/" + first);
  E2E_REQUIRE_STATUS(program, 302);
}

TEST_CASE("office365 cookie pages: an expired invitation says so",
          "[e2e][office365][pages][cookie][invite]") {
  office365_env::options opts;
  opts.node_args = {"--invite-lifetime", "1"};
  office365_env env{opts};
  auto org = env.install_paid();
  expect_status(env.invite(org.token, org.id, {env.o365_id("bob@contoso.com")}),
                201);
  auto mail = env.wait_for_mail("admin@contoso.com", 1);
  auto token = invite_token_in(mail[0], env.public_url());
  browser bob{env};
  auto page = bob.open("/invite/" + token, "bob@contoso.com");
  // The link lives one second: wait for the page to say it expired.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (page.status == 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    page = bob.get("/invite/" + token);
  }
  E2E_REQUIRE_STATUS(page, 410);
  check_page(page);
  CHECK(contains(page.body, "This invitation has expired"));
  CHECK_FALSE(contains(page.body, "Accept the terms and join"));
}

TEST_CASE("office365 cookie pages: a join request is asked for and approved "
          "on pages, nobody else's cookie approves",
          "[e2e][office365][pages][cookie][join]") {
  office365_env::options opts;
  opts.extra_users = 1;
  office365_env env{opts};
  auto installed = env.install("admin@contoso.com"); // the free edition
  installed_org org{installed.answer.str("/organization/id"),
                    installed.answer.str("/user/id"), installed.token};

  browser bob{env};
  auto me = bob.open("/o365/me", "bob@contoso.com");
  E2E_REQUIRE_STATUS(me, 200);
  CHECK(contains(me.body, "Not a member yet"));
  CHECK(contains(me.body, "Request to join"));
  auto no_csrf = bob.post("/o365/join-request", "");
  E2E_REQUIRE_STATUS(no_csrf, 403);
  auto asked = bob.post("/o365/join-request", "csrf=" + csrf_in(me.body));
  E2E_REQUIRE_STATUS(asked, 303);
  auto status = bob.follow(asked, "bob@contoso.com");
  E2E_REQUIRE_STATUS(status, 200);
  CHECK(contains(status.body, "pending"));
  CHECK(contains(status.body, "paid editions"));

  auto mail = env.wait_for_mail("admin@contoso.com", 1);
  auto link = link_in(mail[0].html, env.public_url() + "/join-requests/");
  REQUIRE_FALSE(link.empty());
  auto path = split_url(link).target;

  // The approver signs in on the way; the free edition says why not.
  browser admin{env};
  auto free = admin.open(path, "admin@contoso.com");
  E2E_REQUIRE_STATUS(free, 200);
  check_page(free);
  CHECK(contains(free.body, "bob@contoso.com"));
  CHECK(contains(free.body, "available in paid editions"));
  CHECK_FALSE(contains(free.body, "Approve &amp; Add"));
  auto paid = env.node().patch(admin_token, org_path(org.id),
                               R"({"edition":"paid"})");
  E2E_REQUIRE_STATUS(paid, 200);
  auto page = admin.get(path);
  E2E_REQUIRE_STATUS(page, 200);
  CHECK(contains(page.body, "Approve &amp; Add"));
  auto csrf = csrf_in(page.body);

  // A user without Manage Users sees why not, and cannot approve.
  auto u1 = env.o365_id("user01@contoso.com");
  expect_status(env.invite(org.token, org.id, {u1}), 201);
  auto invites = env.wait_for_mail("admin@contoso.com", 2);
  std::string u1_token;
  for (auto& m : invites)
    if (m.to == "user01@contoso.com")
      u1_token = invite_token_in(m, env.public_url());
  browser user01{env};
  auto invited = user01.open("/invite/" + u1_token, "user01@contoso.com");
  E2E_REQUIRE_STATUS(invited, 200);
  E2E_REQUIRE_STATUS(user01.post("/invite/" + u1_token + "/join",
                                 "csrf=" + csrf_in(invited.body)),
                     201);
  auto standard = user01.open(path, "user01@contoso.com");
  E2E_REQUIRE_STATUS(standard, 403);
  CHECK(contains(standard.body, "manage_users_required"));
  auto their_me = user01.get("/o365/me");
  CHECK(contains(their_me.body, "You are a user of"));

  // Another organization's administrator: not a user of this one.
  std::map<std::string, std::string> ids;
  env.seed_tenant("fabrikam.com", {{"eve@fabrikam.com", "Eve", true, true}},
                  ids);
  env.install("eve@fabrikam.com");
  browser eve{env};
  auto foreign = eve.open(path, "eve@fabrikam.com");
  E2E_REQUIRE_STATUS(foreign, 403);
  CHECK(contains(foreign.body, "Not a user of this organization"));
  auto eve_me = eve.get("/o365/me");
  E2E_REQUIRE_STATUS(eve_me, 200);
  auto eve_post = eve.post(path, "csrf=" + csrf_in(eve_me.body));
  E2E_REQUIRE_STATUS(eve_post, 403);
  CHECK(contains(eve_post.body, "not_a_member"));
  // Eve's session with the admin's form token: refused too.
  E2E_REQUIRE_STATUS(eve.post(path, "csrf=" + csrf), 403);
  auto still
      = env.node().get(org.token, "/api/v1/orgs/" + org.id + "/join-requests");
  CHECK(still.str("/items/0/status") == "pending");

  // The approver's "Approve & Add".
  E2E_REQUIRE_STATUS(admin.post(path, "csrf=nope"), 403);
  auto approved = admin.post(path, "csrf=" + csrf);
  E2E_REQUIRE_STATUS(approved, 200);
  check_page(approved);
  CHECK(contains(approved.body, "Approved"));
  CHECK(contains(approved.body, "bob@contoso.com"));
  auto done = bob.get("/o365/join-request");
  E2E_REQUIRE_STATUS(done, 200);
  CHECK(contains(done.body, "approved"));
}

TEST_CASE("office365 cookie pages: a session ends when it expires or when "
          "the person signs out",
          "[e2e][office365][pages][cookie]") {
  office365_env::options opts;
  opts.node_args = {"--session-lifetime", "2"};
  office365_env env{opts};
  env.install("admin@contoso.com");

  // Signed out: the cookie is removed, and the old one is worth nothing.
  browser admin{env};
  auto me = admin.open("/o365/me", "admin@contoso.com");
  E2E_REQUIRE_STATUS(me, 200);
  CHECK(contains(me.body, "You are a user of"));
  auto cookie = admin.cookies().get("crmsync_session");
  auto csrf = csrf_in(me.body);
  E2E_REQUIRE_STATUS(admin.post("/o365/signout", "csrf=nope"), 403);
  auto out = admin.post("/o365/signout", "csrf=" + csrf);
  E2E_REQUIRE_STATUS(out, 200);
  CHECK(contains(out.header("Set-Cookie"), "crmsync_session=; "));
  CHECK(contains(out.header("Set-Cookie"), "Max-Age=0"));
  CHECK(admin.cookies().get("crmsync_session").empty());
  admin.cookies().set("crmsync_session", cookie);
  auto replayed = admin.post("/o365/signout", "csrf=" + csrf);
  E2E_REQUIRE_STATUS(replayed, 401);
  auto again = admin.get("/o365/me");
  E2E_REQUIRE_STATUS(again, 302); // a new sign-in
  CHECK(split_url(again.header("Location")).origin == env.emulator_url());

  // Expired: the session lives two seconds here.
  browser bob{env};
  auto bob_me = bob.open("/o365/me", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob_me, 200);
  auto bob_csrf = csrf_in(bob_me.body);
  auto expired = bob.post("/o365/join-request", "csrf=" + bob_csrf);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  // The first POST may still be in time (it asks to join); wait for the
  // session to lapse.
  while (expired.status != 401 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    expired = bob.post("/o365/join-request", "csrf=" + bob_csrf);
  }
  E2E_REQUIRE_STATUS(expired, 401);
  check_page(expired);
  CHECK(contains(expired.body, "Please sign in again"));
}

TEST_CASE("office365 cookie pages: an invitee who opens the app instead of "
          "the e-mail accepts on their page, nobody else can",
          "[e2e][office365][pages][cookie][invite]") {
  office365_env env;
  auto org = env.install_paid();
  auto invited = expect_status(
      env.invite(org.token, org.id, {env.o365_id("bob@contoso.com")}), 201);
  auto id = invited.str("/items/0/id");
  REQUIRE(id.size() == 16);

  // Carol is not invited: no invitation on her page, and Bob's is refused.
  browser carol{env};
  auto hers = carol.open("/o365/signin", "carol@contoso.com");
  E2E_REQUIRE_STATUS(hers, 200);
  CHECK(contains(hers.body, "Not a member yet"));
  CHECK_FALSE(contains(hers.body, "Your invitation"));
  auto taken = carol.post("/o365/invites/" + id + "/join",
                          "csrf=" + csrf_in(hers.body));
  E2E_REQUIRE_STATUS(taken, 403);
  CHECK(contains(taken.body, "not_invitee"));

  browser bob{env};
  auto page = bob.open("/o365/signin", "bob@contoso.com");
  E2E_REQUIRE_STATUS(page, 200);
  CHECK(contains(page.body, "Your invitation"));
  CHECK(contains(page.body, "Terms and conditions"));
  CHECK(contains(page.body, "/o365/invites/" + id + "/join"));
  auto csrf = csrf_in(page.body);
  E2E_REQUIRE_STATUS(bob.post("/o365/invites/" + id + "/join", "csrf="), 403);
  auto joined = bob.post("/o365/invites/" + id + "/join", "csrf=" + csrf);
  E2E_REQUIRE_STATUS(joined, 201);
  CHECK(contains(joined.body, "You joined the organization"));
  auto listed = env.node().get(org.token, invites_path(org.id));
  CHECK(listed.str("/items/0/status") == "accepted");
}

TEST_CASE("office365 cookie pages: page sign-ins keep a program's sign-in "
          "token and signing out ends the session's token",
          "[e2e][office365][pages][cookie]") {
  office365_env env;
  auto installed = env.install("admin@contoso.com");
  auto org_id = installed.answer.str("/organization/id");
  auto program = env.sign_in("/o365/signin", "admin@contoso.com");
  E2E_REQUIRE_STATUS(program.answer, 200);
  REQUIRE_FALSE(program.token.empty());
  auto program_works = [&] {
    return env.node().get(program.token, "/api/v1/orgs/" + org_id).status
           == 200;
  };
  CHECK(program_works());

  // Bob asks to join: the approvers' page acts with the session's token.
  browser bob{env};
  auto bob_me = bob.open("/o365/me", "bob@contoso.com");
  E2E_REQUIRE_STATUS(bob_me, 200);
  E2E_REQUIRE_STATUS(
      bob.post("/o365/join-request", "csrf=" + csrf_in(bob_me.body)), 303);
  auto mail = env.wait_for_mail("admin@contoso.com", 1);
  auto path
      = split_url(link_in(mail[0].html, env.public_url() + "/join-requests/"))
            .target;
  REQUIRE_FALSE(path.empty());

  browser first{env};
  E2E_REQUIRE_STATUS(first.open(path, "admin@contoso.com"), 200);
  // Five more sign-ins of the same person in other browsers.
  std::vector<std::unique_ptr<browser>> others;
  auto sign_in_another = [&] {
    others.push_back(std::make_unique<browser>(env));
    auto me = others.back()->open("/o365/me", "admin@contoso.com");
    E2E_REQUIRE_STATUS(me, 200);
    return csrf_in(me.body);
  };
  std::vector<std::string> csrf;
  for (int i = 0; i < 4; ++i)
    csrf.push_back(sign_in_another());
  // One signs out: its token goes, so the next sign-in does not push out
  // the first browser's.
  E2E_REQUIRE_STATUS(others[0]->post("/o365/signout", "csrf=" + csrf[0]), 200);
  sign_in_another();
  E2E_REQUIRE_STATUS(first.get(path), 200);
  // Past five page sessions the oldest one's token goes; the program's
  // token stays through all of them.
  sign_in_another();
  auto evicted = first.get(path);
  E2E_REQUIRE_STATUS(evicted, 401);
  check_page(evicted);
  CHECK(program_works());
}

TEST_CASE("office365 cookie pages: a user's page sessions end when the user "
          "is deactivated",
          "[e2e][office365][pages][cookie][deactivate]") {
  office365_env env;
  auto org = env.install_paid();
  auto bob_id = env.o365_id("bob@contoso.com");
  expect_status(env.invite(org.token, org.id, {bob_id}), 201);
  auto mail = env.wait_for_mail("admin@contoso.com", 1);
  auto token = invite_token_in(mail[0], env.public_url());
  browser bob{env};
  auto page = bob.open("/invite/" + token, "bob@contoso.com");
  E2E_REQUIRE_STATUS(page, 200);
  E2E_REQUIRE_STATUS(
      bob.post("/invite/" + token + "/join", "csrf=" + csrf_in(page.body)),
      201);
  // Bob signs in again, now as the CRM user: a member's page session.
  bob.cookies().set("crmsync_session", "");
  auto me = bob.open("/o365/me", "bob@contoso.com");
  E2E_REQUIRE_STATUS(me, 200);
  REQUIRE(contains(me.body, "You are a user of"));
  auto csrf = csrf_in(me.body);
  auto user = env.node().get(admin_token, "/admin/v1/users/bob@contoso.com");
  E2E_REQUIRE_STATUS(user, 200);

  E2E_REQUIRE_STATUS(
      env.node().post(org.token,
                      user_path(org.id, user.str("/user/id")) + "/deactivate",
                      ""),
      200);
  // The cookie opens nothing now, and its form token is worth nothing.
  auto after = bob.get("/o365/me");
  CHECK(after.status == 302);
  CHECK_FALSE(contains(after.body, "You are a user of"));
  E2E_REQUIRE_STATUS(bob.post("/o365/signout", "csrf=" + csrf), 401);
}
