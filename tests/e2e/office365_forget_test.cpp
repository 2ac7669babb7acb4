// End-to-end: an organization that leaves its Office 365 tenant
// (disconnected, or deleted) leaves no app-only Graph token behind on the
// node, nor a working token issued by an Office 365 sign-in (issue 14,
// uninstall). The emulator counts the tokens it issues per
// tenant: a node that kept its cached token would use it again after the
// organization is installed anew, and the count would not move.
#include <catch2/catch.hpp>

#include "tests/e2e/office365_fixture.hpp"

using namespace crmsync::e2e;

namespace {

std::string o365_users_path(std::string_view org) {
  return "/api/v1/orgs/" + std::string{org} + "/office365/users";
}

/// App-only tokens the emulator issued for `tenant` so far.
uint64_t tokens_issued(office365_env& env) {
  auto state = env.emulator().get("", "/_emulator/state");
  E2E_REQUIRE_STATUS(state, 200);
  return state.u64("/app_tokens_issued/" + env.tenant());
}

/// Lists the tenant's Office 365 users (an app-only Graph call).
void list_users(office365_env& env, const std::string& token,
                const std::string& org) {
  auto r = env.node().get(token, o365_users_path(org));
  E2E_REQUIRE_STATUS(r, 200);
}

/// contoso.com installed (paid) with its app token in the node's cache: a
/// Graph call made, and a second one that fetches none. Answers how many
/// tokens the emulator issued by then.
uint64_t install_with_cached_token(office365_env& env, installed_org& org) {
  org = env.install_paid();
  list_users(env, org.token, org.id);
  auto cached = tokens_issued(env);
  REQUIRE(cached >= 1);
  list_users(env, org.token, org.id);
  CHECK(tokens_issued(env) == cached);
  return cached;
}

} // namespace

TEST_CASE("office365: a disconnected tenant's app token is forgotten",
          "[e2e][office365][org_data]") {
  office365_env env;
  installed_org org;
  auto cached = install_with_cached_token(env, org);

  // A standard user cannot disconnect (and nothing is forgotten).
  auto bob = create_user(env.node(), org.token, org.id, "bob@crm.example",
                         "Bob", "standard", false, "bob-password-1");
  auto refused = env.node().post(
      bob.token, "/api/v1/orgs/" + org.id + "/office365/disconnect", "");
  CHECK(refused.status == 403);
  list_users(env, org.token, org.id);
  CHECK(tokens_issued(env) == cached);

  auto off = env.node().post(
      org.token, "/api/v1/orgs/" + org.id + "/office365/disconnect", "");
  E2E_REQUIRE_STATUS(off, 200);
  // Every account's own token stays (README): the installer's, which a
  // sign-in made (it keeps its --session-ttl expiry), and Bob's.
  CHECK(env.node().get(org.token, org_path(org.id)).status == 200);
  CHECK(env.node().get(bob.token, org_path(org.id)).status == 200);
  // Installed again, the organization's next Graph call needs a token the
  // node no longer has.
  auto again = env.install("admin@contoso.com");
  REQUIRE(again.answer.str("/organization/id") == org.id);
  list_users(env, again.token, org.id);
  CHECK(tokens_issued(env) == cached + 1);
}

TEST_CASE("office365: a deleted organization's app token is forgotten",
          "[e2e][office365][org_data]") {
  office365_env env;
  installed_org org;
  auto cached = install_with_cached_token(env, org);
  auto gone = env.node().del(admin_token,
                             "/admin/v1/orgs/" + org.id + "?confirm=" + org.id);
  E2E_REQUIRE_STATUS(gone, 200);
  // A new organization for the same tenant fetches a token of its own.
  auto fresh = env.install("admin@contoso.com");
  auto id = fresh.answer.str("/organization/id");
  REQUIRE(id != org.id);
  list_users(env, fresh.token, id);
  CHECK(tokens_issued(env) == cached + 1);
}
