// The driver of the web admin page's browser test: a real graph-emulator
// and crmsyncd (tests/e2e/sync_fixture) with an organization whose admin
// syncs a calendar, some traffic (API calls, a change from Outlook, a
// forged notification), then web_test.mjs in headless Chromium against
// the node. Hidden from the usual runs ([.]): tests/web/run.sh, which
// installs playwright-core first, selects it with "[web]".
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <sys/wait.h>

#include "tests/e2e/office365_fixture.hpp"
#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

TEST_CASE("the web admin page shows the node, its tenants and sync health",
          "[.][web]") {
  const char* dir = std::getenv("WEB_TEST_DIR");
  INFO("WEB_TEST_DIR names tests/web (run it through tests/web/run.sh)");
  REQUIRE(dir != nullptr);

  sync_env env;
  auto& org = env.org();
  env.create_event("Planning", hours_from_now(20), hours_from_now(21));
  env.enable_and_wait();
  env.outlook_create(env.crm_calendar_id(), "From Outlook", hours_from_now(30),
                     hours_from_now(31));
  env.wait_in_sync();
  auto sub = env.subscription();
  sub.client_state = "forged";
  E2E_REQUIRE_STATUS(env.notify(sub, "updated", "AAMkAforged"), 202);

  auto o = env.node().get(org.token, "/api/v1/orgs/" + org.id);
  E2E_REQUIRE_STATUS(o, 200);
  auto u = env.node().get(admin_token, "/admin/v1/users/" + org.admin_id);
  E2E_REQUIRE_STATUS(u, 200);

  auto url = "http://127.0.0.1:" + std::to_string(env.node().port());
  ::setenv("NODE_URL", url.c_str(), 1);
  ::setenv("ADMIN_TOKEN", admin_token, 1);
  ::setenv("ORG_ID", org.id.c_str(), 1);
  ::setenv("ORG_NAME", o.str("/name").c_str(), 1);
  ::setenv("USER_EMAIL", u.str("/user/email").c_str(), 1);
  auto cmd = "cd '" + std::string{dir} + "' && node web_test.mjs";
  int rc = std::system(cmd.c_str());
  INFO("web_test.mjs printed PASS/FAIL per step above; node URL " << url);
  REQUIRE(WIFEXITED(rc));
  CHECK(WEXITSTATUS(rc) == 0);
}

// The Office 365 pages (issue 14): a fresh emulator and node, nothing
// installed; pages_test.mjs walks the install and a sign-in in Chromium.
TEST_CASE("a person with a browser walks the Office 365 pages",
          "[.][web][pages]") {
  const char* dir = std::getenv("WEB_TEST_DIR");
  INFO("WEB_TEST_DIR names tests/web (run it through tests/web/run.sh)");
  REQUIRE(dir != nullptr);
  office365_env env;
  ::setenv("NODE_URL", env.node_url().c_str(), 1);
  auto cmd = "cd '" + std::string{dir} + "' && node pages_test.mjs";
  int rc = std::system(cmd.c_str());
  INFO("pages_test.mjs printed PASS/FAIL per step above; node URL "
       << env.node_url());
  REQUIRE(WIFEXITED(rc));
  CHECK(WEXITSTATUS(rc) == 0);
}
