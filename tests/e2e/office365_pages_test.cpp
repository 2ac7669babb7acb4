// End-to-end: the Office 365 flows answer a browser (Accept prefers
// text/html) with pages and every other client with the JSON of before
// (issue 14), against a real graph-emulator.
#include <catch2/catch.hpp>

#include "tests/e2e/office365_fixture.hpp"

using namespace crmsync::e2e;

namespace {

/// GET `url` (on the node) as a browser does: Accept prefers text/html.
api_response open_as_browser(office365_env& env, const std::string& url) {
  auto parts = split_url(url);
  INFO("redirected to " << url);
  REQUIRE(parts.origin == env.public_url());
  return env.node().request("GET", parts.target, "", {}, "application/json",
                            {{"Accept", browser_accept}});
}

void check_page_headers(const api_response& r) {
  CHECK(r.header("Content-Type").rfind("text/html", 0) == 0);
  CHECK(r.header("Content-Security-Policy").find("default-src 'none'")
        != std::string::npos);
  CHECK(r.header("Cache-Control") == "no-store");
  CHECK(r.header("X-Content-Type-Options") == "nosniff");
  // Nothing is loaded from elsewhere.
  CHECK(r.body.find("<script") == std::string::npos);
  CHECK(r.body.find("http://") == std::string::npos);
  CHECK(r.body.find("https://") == std::string::npos);
}

/// The install's terms page (the browser's session cookie is in the
/// node client's jar), then its "Accept and continue".
api_response accept_terms(office365_env& env) {
  auto terms = env.node().request("GET", "/o365/install/terms", "", {}, "",
                                  {{"Accept", browser_accept}});
  E2E_REQUIRE_STATUS(terms, 200);
  check_page_headers(terms);
  const std::string field = "name=\"csrf\" value=\"";
  auto at = terms.body.find(field);
  REQUIRE(at != std::string::npos);
  at += field.size();
  auto csrf = terms.body.substr(at, terms.body.find('"', at) - at);
  return env.node().request("POST", "/o365/install/accept", "", "csrf=" + csrf,
                            "application/x-www-form-urlencoded",
                            {{"Accept", browser_accept}});
}

} // namespace

TEST_CASE("office365 pages: a browser walks the install and gets a page "
          "that says what happened",
          "[e2e][office365][pages]") {
  office365_env env;
  // Redirects are the same for a browser: it follows them.
  auto start
      = env.node().request("GET", "/o365/install", "", {}, "application/json",
                           {{"Accept", browser_accept}});
  E2E_REQUIRE_STATUS(start, 302);
  auto callback
      = env.at_emulator(start.header("Location"), "admin@contoso.com");
  // Signed in: the terms first (a cookie session), then admin consent.
  auto to_terms = open_as_browser(env, callback);
  E2E_REQUIRE_STATUS(to_terms, 303);
  CHECK(to_terms.header("Location")
        == env.public_url() + "/o365/install/terms");
  auto to_consent = accept_terms(env);
  E2E_REQUIRE_STATUS(to_consent, 302);
  auto consented
      = env.at_emulator(to_consent.header("Location"), "admin@contoso.com");
  auto installed = open_as_browser(env, consented);
  E2E_REQUIRE_STATUS(installed, 200);
  check_page_headers(installed);
  CHECK(installed.body.find("crmsync is installed") != std::string::npos);
  CHECK(installed.body.find("A new CRM organization was created")
        != std::string::npos);
  CHECK(installed.body.find("Ada Admin") != std::string::npos);
  CHECK(installed.body.find("admin@contoso.com") != std::string::npos);
  // The same flow repeated, as a browser: the organization is linked.
  auto again
      = env.node().request("GET", "/o365/install", "", {}, "application/json",
                           {{"Accept", browser_accept}});
  E2E_REQUIRE_STATUS(again, 302);
  E2E_REQUIRE_STATUS(
      open_as_browser(
          env, env.at_emulator(again.header("Location"), "admin@contoso.com")),
      303);
  auto page = accept_terms(env);
  E2E_REQUIRE_STATUS(page, 200);
  check_page_headers(page);
  CHECK(page.body.find("linked to your existing CRM organization")
        != std::string::npos);
}

TEST_CASE("office365 pages: programs keep their JSON answers whatever else "
          "they accept",
          "[e2e][office365][pages]") {
  office365_env env;
  env.install("admin@contoso.com");
  for (auto accept :
       {"", "application/json", "*/*", "application/json, text/html;q=0.5",
        "text/html;q=0.5, */*"}) {
    INFO("Accept: " << accept);
    crmsync::http::header_list extra;
    if (*accept != '\0')
      extra.emplace_back("Accept", accept);
    auto start = env.node().request("GET", "/o365/signin", "", {},
                                    "application/json", extra);
    E2E_REQUIRE_STATUS(start, 302);
    auto callback
        = env.at_emulator(start.header("Location"), "bob@contoso.com");
    auto parts = split_url(callback);
    auto answer = env.node().request("GET", parts.target, "", {},
                                     "application/json", extra);
    E2E_REQUIRE_STATUS(answer, 200);
    CHECK(answer.header("Content-Type").rfind("application/json", 0) == 0);
    CHECK(answer.str("/status") == "not_a_member");
    CHECK(answer.str("/office365_user/email") == "bob@contoso.com");
    CHECK_FALSE(answer.str("/office365_session").empty());
    // Errors too.
    auto bad = env.node().request("GET", "/invite/not-a-token", "", {},
                                  "application/json", extra);
    E2E_REQUIRE_STATUS(bad, 400);
    CHECK(bad.error_code() == "invalid_invite_token");
  }
}

TEST_CASE("office365 pages: a browser's errors are pages, and what the "
          "page shows is escaped",
          "[e2e][office365][pages]") {
  office365_env env;
  auto bad
      = env.node().request("GET", "/invite/not-a-token", "", {},
                           "application/json", {{"Accept", browser_accept}});
  E2E_REQUIRE_STATUS(bad, 400);
  check_page_headers(bad);
  CHECK(bad.body.find("invalid_invite_token") != std::string::npos);
  CHECK(bad.body.find("open the link from the invitation e-mail")
        != std::string::npos);
  // A replayed callback: refused, as a page.
  auto start
      = env.node().request("GET", "/o365/signin", "", {}, "application/json",
                           {{"Accept", browser_accept}});
  E2E_REQUIRE_STATUS(start, 302);
  auto callback = env.at_emulator(start.header("Location"), "bob@contoso.com");
  E2E_REQUIRE_STATUS(open_as_browser(env, callback), 303);
  auto replay = open_as_browser(env, callback);
  E2E_REQUIRE_STATUS(replay, 400);
  check_page_headers(replay);
  CHECK(replay.body.find("invalid_state") != std::string::npos);

  // A person whose Office 365 name is markup: shown as text.
  std::map<std::string, std::string> ids;
  env.seed_tenant("fabrikam.com",
                  {{"eve@fabrikam.com",
                    "<b>Eve</b> & \"co\" <script>x</script>", true, true}},
                  ids);
  auto eve
      = env.node().request("GET", "/o365/install", "", {}, "application/json",
                           {{"Accept", browser_accept}});
  E2E_REQUIRE_STATUS(eve, 302);
  auto eve_callback
      = env.at_emulator(eve.header("Location"), "eve@fabrikam.com");
  E2E_REQUIRE_STATUS(open_as_browser(env, eve_callback), 303);
  auto consent = accept_terms(env);
  E2E_REQUIRE_STATUS(consent, 302);
  auto installed = open_as_browser(
      env, env.at_emulator(consent.header("Location"), "eve@fabrikam.com"));
  E2E_REQUIRE_STATUS(installed, 200);
  check_page_headers(installed);
  CHECK(installed.body.find("&lt;b&gt;Eve&lt;/b&gt; &amp; &quot;co&quot; "
                            "&lt;script&gt;x&lt;/script&gt;")
        != std::string::npos);
  CHECK(installed.body.find("<b>Eve</b>") == std::string::npos);
}
