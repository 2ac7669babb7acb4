// End-to-end: the admin API, virtual actor passivation, health probes.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "tests/support/api_client.hpp"
#include "tests/support/free_port.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::e2e;

namespace {

struct kind_counts {
  int64_t live = -1;
  int64_t activations = -1;
  int64_t passivations = -1;
};

kind_counts tenant_counts(const api_response& actors) {
  kind_counts k;
  for (size_t i = 0; i < actors.size("/kinds"); ++i) {
    auto base = "/kinds/" + std::to_string(i);
    if (actors.str(base + "/kind") == "tenant") {
      k.live = actors.i64(base + "/live");
      k.activations = actors.i64(base + "/activations");
      k.passivations = actors.i64(base + "/passivations");
    }
  }
  return k;
}

bool tenant_listed(const api_response& actors, const std::string& org) {
  for (size_t i = 0; i < actors.size("/items"); ++i) {
    auto base = "/items/" + std::to_string(i);
    if (actors.str(base + "/kind") == "tenant"
        && actors.str(base + "/id") == org
        && actors.str(base + "/tenant") == org)
      return true;
  }
  return false;
}

} // namespace

TEST_CASE(
    "admin API: status, actors, tenants, users, events, user tokens refused",
    "[e2e][admin]") {
  test_node node;
  auto& api = node.api();

  auto idle = api.get(admin_token, "/admin/v1/actors");
  REQUIRE(idle.status == 200);
  auto k0 = tenant_counts(idle);
  REQUIRE(k0.live >= 0);
  CHECK(k0.activations == 0);
  CHECK(k0.live == 0);
  CHECK(idle.i64("/idle_timeout_ms") == 300000);

  auto acme = create_org(api, "Acme", "admin@acme.example");
  auto sam
      = create_user(api, acme.admin_token, acme.id, "Sam@Acme.example", "Sam");
  std::vector<std::string> sam_events;
  for (int i = 0; i < 5; ++i)
    sam_events.push_back(
        create_event(
            api, acme.id, sam,
            event_body("e" + std::to_string(i),
                       "2026-02-0" + std::to_string(i + 1) + "T09:00:00Z",
                       "2026-02-0" + std::to_string(i + 1) + "T10:00:00Z"))
            .str("/id"));
  auto beta = create_org(api, "Beta", "admin@beta.example", "paid");
  auto gamma = create_org(api, "Gamma", "admin@gamma.example");

  // Actors: a tenant activation per organization used.
  auto actors = api.get(admin_token, "/admin/v1/actors");
  REQUIRE(actors.status == 200);
  auto k1 = tenant_counts(actors);
  CHECK(k1.activations == 3);
  CHECK(k1.live == 3);
  CHECK(k1.passivations == 0);
  CHECK(tenant_listed(actors, acme.id));
  CHECK(tenant_listed(actors, beta.id));
  CHECK(tenant_listed(actors, gamma.id));

  // Status.
  auto status = api.get(admin_token, "/admin/v1/status");
  E2E_REQUIRE_STATUS(status, 200);
  CHECK(status.str("/node_id") == "n1");
  CHECK(status.str("/version") == "0.1.0");
  CHECK(status.str("/listen") == "127.0.0.1:" + std::to_string(node.port()));
  CHECK(status.str("/data_dir") == node.data_dir());
  CHECK(status.boolean("/ready"));
  CHECK(status.i64("/uptime_s") >= 0);
  CHECK(status.u64("/http/requests") >= 12);
  CHECK(status.u64("/http/connections") >= 1);
  CHECK(status.i64("/actors/tenant/live") == 3);
  CHECK(status.i64("/actors/tenant/activations") == 3);
  CHECK(status.has("/storage/estimate_keys"));

  // Tenants: listing and paging.
  auto tenants = api.get(admin_token, "/admin/v1/tenants");
  REQUIRE(tenants.status == 200);
  CHECK(tenants.size("/items") == 3);
  CHECK(tenants.is_null("/next_cursor"));
  std::set<std::string> ids;
  for (auto& item : walk_pages(api, admin_token, "/admin/v1/tenants", 1, 10))
    ids.insert(item.substr(7, 16)); // {"id":"<16 hex>"
  CHECK(ids == std::set<std::string>{acme.id, beta.id, gamma.id});
  for (size_t i = 0; i < 3; ++i) {
    auto base = "/items/" + std::to_string(i);
    if (tenants.str(base + "/id") == acme.id) {
      CHECK(tenants.str(base + "/name") == "Acme");
      CHECK(tenants.str(base + "/edition") == "free");
      CHECK(tenants.i64(base + "/users") == 2);
      CHECK(tenants.i64(base + "/events") == 5);
    }
    if (tenants.str(base + "/id") == beta.id)
      CHECK(tenants.str(base + "/edition") == "paid");
  }
  CHECK(api.get(admin_token, "/admin/v1/tenants?cursor=nothex").status == 400);
  CHECK(api.get(admin_token, "/admin/v1/tenants?limit=0").status == 400);

  // One tenant.
  auto tenant = api.get(admin_token, "/admin/v1/tenants/" + acme.id);
  REQUIRE(tenant.status == 200);
  CHECK(tenant.str("/org/id") == acme.id);
  CHECK(tenant.str("/org/name") == "Acme");
  CHECK(tenant.i64("/users") == 2);
  CHECK(tenant.i64("/events") == 5);
  CHECK(tenant.boolean("/active"));
  CHECK(tenant.json("/org")
        == api.get(acme.admin_token, org_path(acme.id)).json());
  auto no_tenant = api.get(admin_token, "/admin/v1/tenants/0123456789abcdef");
  CHECK(no_tenant.status == 404);
  CHECK(no_tenant.error_code() == "not_found");
  CHECK(api.get(admin_token, "/admin/v1/tenants/garbage").status == 404);

  // One user, by id and by e-mail (any case).
  auto by_id = api.get(admin_token, "/admin/v1/users/" + sam.id);
  REQUIRE(by_id.status == 200);
  CHECK(by_id.str("/user/id") == sam.id);
  CHECK(by_id.str("/user/email") == "sam@acme.example");
  CHECK(by_id.str("/org/id") == acme.id);
  CHECK(by_id.str("/org/name") == "Acme");
  CHECK(by_id.json("/user")
        == api.get(sam.token, user_path(acme.id, sam.id)).json());
  CHECK_FALSE(by_id.has("/user/token"));
  CHECK(by_id.body.find("password_hash") == std::string::npos);
  auto by_mail = api.get(admin_token, "/admin/v1/users/SAM@acme.EXAMPLE");
  REQUIRE(by_mail.status == 200);
  CHECK(by_mail.json() == by_id.json());
  CHECK(api.get(admin_token, "/admin/v1/users/nobody@acme.example").status
        == 404);
  CHECK(api.get(admin_token, "/admin/v1/users/0123456789abcdef").status == 404);
  CHECK(api.get(admin_token, "/admin/v1/users/garbage").status == 404);

  // A user's events.
  auto user_events
      = api.get(admin_token, "/admin/v1/users/" + sam.id + "/events");
  REQUIRE(user_events.status == 200);
  REQUIRE(user_events.size("/items") == 5);
  for (size_t i = 0; i < 5; ++i)
    CHECK(user_events.str("/items/" + std::to_string(i) + "/id")
          == sam_events[i]);
  CHECK(user_events.json()
        == api.get(sam.token, user_events_path(acme.id, sam.id)).json());
  auto paged = walk_pages(api, admin_token,
                          "/admin/v1/users/sam@acme.example/events", 2, 10);
  CHECK(paged.size() == 5);
  auto window
      = api.get(admin_token, "/admin/v1/users/" + sam.id
                                 + "/events?from=2026-02-02&to=2026-02-04");
  REQUIRE(window.status == 200);
  CHECK(window.size("/items") == 2);
  CHECK(api.get(admin_token, "/admin/v1/users/" + sam.id + "/events?limit=1001")
            .status
        == 400);
  CHECK(api.get(admin_token, "/admin/v1/users/nobody@x.example/events").status
        == 404);
  auto admin_events
      = api.get(admin_token, "/admin/v1/users/" + acme.admin_id + "/events");
  REQUIRE(admin_events.status == 200);
  CHECK(admin_events.size("/items") == 0);

  // Admin routes refuse user tokens (403) and missing tokens (401).
  for (const std::string& path :
       {std::string{"/admin/v1/status"}, std::string{"/admin/v1/actors"},
        std::string{"/admin/v1/tenants"}, "/admin/v1/tenants/" + acme.id,
        "/admin/v1/users/" + sam.id, "/admin/v1/users/" + sam.id + "/events"}) {
    INFO(path);
    auto as_admin = api.get(acme.admin_token, path);
    CHECK(as_admin.status == 403);
    CHECK(as_admin.error_code() == "forbidden");
    auto as_user = api.get(sam.token, path);
    CHECK(as_user.status == 403);
    auto anonymous = api.get("", path);
    CHECK(anonymous.status == 401);
  }
  // The admin API reads no tenant: the numbers did not move.
  auto k2 = tenant_counts(api.get(admin_token, "/admin/v1/actors"));
  CHECK(k2.activations == 3);
}

TEST_CASE(
    "virtual actors: idle tenants passivate and reactivate with their data",
    "[e2e][admin][actors]") {
  test_node node{{"--idle-timeout", "1", "--sweep-interval-ms", "100"}};
  auto& api = node.api();
  auto org = create_org(api, "Sleepy", "admin@sleepy.example");
  auto sam
      = create_user(api, org.admin_token, org.id, "sam@sleepy.example", "Sam");
  auto ev = create_event(
      api, org.id, sam,
      event_body("before nap", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z"));
  auto user_before = api.get(sam.token, user_path(org.id, sam.id));
  auto org_before = api.get(sam.token, org_path(org.id));
  REQUIRE(user_before.status == 200);

  auto a0 = api.get(admin_token, "/admin/v1/actors");
  REQUIRE(a0.status == 200);
  CHECK(a0.i64("/idle_timeout_ms") == 1000);
  auto k0 = tenant_counts(a0);
  CHECK(k0.activations == 1);
  CHECK(k0.passivations == 0);

  // Poll until the tenant is passivated.
  const auto deadline
      = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  kind_counts k;
  bool listed = true;
  for (;;) {
    auto a = api.get(admin_token, "/admin/v1/actors");
    REQUIRE(a.status == 200);
    k = tenant_counts(a);
    listed = tenant_listed(a, org.id);
    if ((k.passivations > k0.passivations && k.live == 0 && !listed)
        || std::chrono::steady_clock::now() > deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(k.passivations == k0.passivations + 1);
  CHECK(k.live == 0);
  CHECK_FALSE(listed);
  auto t = api.get(admin_token, "/admin/v1/tenants/" + org.id);
  REQUIRE(t.status == 200);
  CHECK_FALSE(t.boolean("/active"));

  // Use the API again: a new activation, and everything is still there.
  auto ev_again = api.get(sam.token, event_path(org.id, ev.str("/id")));
  REQUIRE(ev_again.status == 200);
  CHECK(ev_again.json() == ev.json());
  CHECK(api.get(sam.token, user_path(org.id, sam.id)).json()
        == user_before.json());
  CHECK(api.get(sam.token, org_path(org.id)).json() == org_before.json());
  auto a2 = api.get(admin_token, "/admin/v1/actors");
  auto k2 = tenant_counts(a2);
  CHECK(k2.activations == k0.activations + 1);
  CHECK(k2.live == 1);
  CHECK(tenant_listed(a2, org.id));
  // Tokens are verified by the fresh instance too.
  CHECK(
      api.get("crm_" + org.id + sam.id + std::string(43, 'Z'), org_path(org.id))
          .status
      == 401);
  // Writes after reactivation keep counting from the stored state.
  auto ev2 = create_event(
      api, org.id, sam,
      event_body("after nap", "2026-03-04T09:00:00Z", "2026-03-04T10:00:00Z"));
  CHECK(api.get(sam.token, org_path(org.id)).i64("/events") == 2);
  auto p = api.patch(sam.token, event_path(org.id, ev.str("/id")),
                     R"({"title":"x","version":1})");
  CHECK(p.status == 200);
  CHECK(p.i64("/version") == 2);
  auto dup = api.post(
      org.admin_token, users_path(org.id),
      R"({"email":"sam@sleepy.example","name":"Sam again","profile":"standard"})");
  CHECK(dup.status == 409);
}

TEST_CASE("health probes", "[e2e][health]") {
  test_node node;
  auto& api = node.api();
  auto h = api.get("", "/healthz");
  CHECK(h.status == 200);
  CHECK(h.str("/status") == "ok");
  CHECK(h.header("Content-Type").rfind("application/json", 0) == 0);
  auto r = api.get("", "/readyz");
  CHECK(r.status == 200);
  CHECK(r.str("/status") == "ready");
  // With any token, too.
  CHECK(api.get("whatever", "/healthz").status == 200);
  CHECK(api.get(admin_token, "/readyz").status == 200);
  // Only GET is routed.
  CHECK(api.request("DELETE", "/healthz", "").status == 405);
}

TEST_CASE("virtual actors: requests racing a passivation are all answered",
          "[e2e][admin][actors]") {
  test_node node{{"--idle-timeout", "1", "--sweep-interval-ms", "10"}};
  constexpr int n = 6;
  std::vector<org_info> orgs;
  std::vector<std::string> events;
  for (int i = 0; i < n; ++i) {
    orgs.push_back(create_org(node.api(), "Org " + std::to_string(i),
                              "admin" + std::to_string(i) + "@race.example"));
    events.push_back(create_event(node.api(), orgs[i],
                                  event_body("e", "2026-05-01T09:00:00Z",
                                             "2026-05-01T10:00:00Z"))
                         .json());
  }
  // Each client comes back just around the idle timeout, so that its
  // request meets the tenant while it is being passivated (or just after).
  const uint16_t port = node.port();
  std::vector<std::vector<std::string>> failures(n);
  std::vector<int> ok(n, 0);
  crmsync::test::thread_guard threads;
  for (int i = 0; i < n; ++i) {
    threads.spawn([&, i] {
      api_client c{port};
      std::mt19937 rng{static_cast<unsigned>(i * 7919 + 1)};
      simdjson::dom::parser p;
      std::string id{p.parse(events[i])["id"].get_string().value()};
      for (int round = 0; round < 3; ++round) {
        std::this_thread::sleep_for(
            std::chrono::milliseconds(985 + rng() % 40));
        api_response r;
        std::string err;
        bool sent
            = round % 2 ? c.try_request(
                  "PATCH", event_path(orgs[i].id, id), orgs[i].admin_token,
                  "{\"location\":\"round " + std::to_string(round) + "\"}", r,
                  err)
                        : c.try_request("GET", event_path(orgs[i].id, id),
                                        orgs[i].admin_token, "", r, err);
        if (!sent)
          failures[i].push_back(err);
        else if (r.status != 200)
          failures[i].push_back(r.describe());
        else
          ++ok[i];
      }
    });
  }
  threads.join();
  for (int i = 0; i < n; ++i) {
    INFO("org " << i);
    for (auto& f : failures[i])
      FAIL_CHECK(f);
    CHECK(ok[i] == 3);
    auto e = node.api().get(
        orgs[i].admin_token,
        event_path(orgs[i].id,
                   node.api()
                       .get(admin_token,
                            "/admin/v1/users/" + orgs[i].admin_id + "/events")
                       .str("/items/0/id")));
    CHECK(e.i64("/version") == 2);
    CHECK(e.str("/location") == "round 1");
  }
  auto k = tenant_counts(node.api().get(admin_token, "/admin/v1/actors"));
  // The timing did put tenants to sleep between the rounds.
  CHECK(k.passivations >= 1);
  CHECK(k.activations == k.passivations + k.live); // none died otherwise
  CHECK(node.stop() == 0);
}

TEST_CASE("routing: a trailing slash is the same route, an empty segment "
          "is none",
          "[e2e][admin]") {
  test_node node;
  auto& api = node.api();
  auto org = create_org(api, "Acme", "admin@acme.example");
  CHECK(api.get(admin_token, "/admin/v1/status/").status == 200);
  CHECK(api.get(org.admin_token, "/api/v1/orgs/" + org.id + "/").status == 200);
  for (const std::string& path : std::vector<std::string>{
           "/admin//v1/status", "//admin/v1/status", "/admin/v1/status//",
           "/api/v1/orgs//" + org.id, "/api/v1//orgs/" + org.id}) {
    INFO(path);
    auto r = api.get(admin_token, path);
    CHECK(r.status == 404);
    CHECK(r.error_code() == "not_found");
  }
}

namespace {

const char* const scrape_token = "e2e-scrape-token-only-for-metrics";

} // namespace

TEST_CASE("metrics: the node's port asks for the admin or the scrape token, "
          "--metrics-listen serves them without one",
          "[e2e][metrics][admin]") {
  crmsync::test::temp_dir secrets;
  auto token_file = secrets.path() + "/scrape.token";
  {
    std::ofstream out{token_file};
    out << scrape_token << "\n";
  }
  auto metrics_port = crmsync::test::free_port();
  test_node node{{"--metrics-token-file", token_file, "--metrics-listen",
                  "127.0.0.1:" + std::to_string(metrics_port)}};
  auto& api = node.api();
  auto org = create_org(api, "Acme", "admin@acme.example");

  // Without a token, with a user's token, with a wrong one: refused.
  auto anonymous = api.get("", "/metrics");
  CHECK(anonymous.status == 401);
  CHECK(anonymous.body.find("crmsync_") == std::string::npos);
  CHECK(api.get("not-a-token", "/metrics").status == 401);
  CHECK(api.get(org.admin_token, "/metrics").status == 403);
  // The admin token and the scrape token read it.
  for (const char* token : {admin_token, scrape_token}) {
    auto m = api.get(token, "/metrics");
    INFO(m.describe());
    CHECK(m.status == 200);
    CHECK(m.header("Content-Type")
          == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(m.body.find("crmsync_sync_inbox_depth 0") != std::string::npos);
  }
  // The scrape token is good for nothing else.
  CHECK(api.get(scrape_token, "/admin/v1/status").status == 401);

  // Every spelling of the path: "/metrics/" is /metrics (a proxy's prefix
  // match covers it too); an empty segment is no route at all.
  CHECK(api.get("", "/metrics/").status == 401);
  CHECK(api.get(admin_token, "/metrics/").status == 200);
  CHECK(api.get("", "//metrics").status == 404);
  CHECK(api.get("", "/metrics//").status == 404);
  CHECK(api.get("", "/%2Fmetrics").status == 404);

  // The private listener: /metrics without a token, and nothing else.
  api_client scraper{metrics_port};
  auto open = scraper.get("", "/metrics");
  INFO(open.describe());
  CHECK(open.status == 200);
  CHECK(open.body.find("crmsync_http_requests_total") != std::string::npos);
  CHECK(scraper.get("", "/healthz").status == 404);
  CHECK(scraper.get(admin_token, "/admin/v1/status").status == 404);
  CHECK(scraper.get(admin_token, "/api/v1/orgs/" + org.id).status == 404);
  CHECK(scraper.request("POST", "/metrics", "", "{}").status == 405);
}

TEST_CASE("every answer says nosniff and carries a restrictive "
          "Content-Security-Policy",
          "[e2e][admin]") {
  test_node node;
  auto& api = node.api();
  auto check_headers = [](const api_response& r) {
    INFO(r.describe());
    CHECK(r.header("X-Content-Type-Options") == "nosniff");
    auto csp = r.header("Content-Security-Policy");
    CHECK(csp.find("default-src 'none'") != std::string::npos);
    CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
  };
  check_headers(api.get("", "/healthz"));                 // 200
  check_headers(api.get("", "/no/such/route"));           // 404
  check_headers(api.get("", "/admin/v1/status"));         // 401
  check_headers(api.request("DELETE", "/healthz", ""));   // 405
  check_headers(api.post("", "/webhooks/graph", "{}"));   // 503: no Graph
  check_headers(api.post("", "/api/v1/orgs", "{broken")); // 401 first
  check_headers(api.post(admin_token, "/api/v1/orgs", "{broken")); // 400
  // The admin page keeps its own policy (it loads its script and styles).
  auto page = api.get("", "/admin/");
  CHECK(page.status == 200);
  CHECK(page.header("X-Content-Type-Options") == "nosniff");
  CHECK(page.header("Content-Security-Policy").find("default-src 'self'") == 0);
}

TEST_CASE("the webhook validation handshake echoes only a short token",
          "[e2e][admin]") {
  test_node node;
  auto& api = node.api();
  std::string graphs
      = "Validation: Testing client application reachability for "
        "subscription Request-Id: 3b3f9821-ce3f-23d9-879b-00a23f3ebbe2";
  std::string encoded;
  for (char c : graphs)
    encoded += c == ' ' ? std::string{"%20"} : std::string(1, c);
  for (const char* route : {"/webhooks/graph", "/webhooks/graph/lifecycle"}) {
    INFO(route);
    auto ok
        = api.post("", std::string{route} + "?validationToken=" + encoded, "");
    CHECK(ok.status == 200);
    CHECK(ok.body == graphs);
    CHECK(ok.header("Content-Type").rfind("text/plain", 0) == 0);
    CHECK(ok.header("X-Content-Type-Options") == "nosniff");

    auto echo = api.post(
        "", std::string{route} + "?validationToken=" + std::string(513, 'a'),
        "");
    CHECK(echo.status == 400);
    CHECK(echo.error_field() == "validationToken");
    CHECK(echo.body.find(std::string(100, 'a')) == std::string::npos);
    CHECK(api.post("",
                   std::string{route}
                       + "?validationToken=" + std::string(512, 'a'),
                   "")
              .status
          == 200);
  }
}
