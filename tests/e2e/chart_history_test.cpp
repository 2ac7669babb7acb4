// End-to-end: GET /admin/v1/history, the last hour of the admin page's
// charts kept by the node (t16-admin). A real crmsyncd sampling every
// second; its counters move with real requests.
#include <catch2/catch.hpp>

#include <string>

#include "tests/support/api_client.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync::e2e;

namespace {

/// The total of `key` in the last point of `series`; 0 when it has none.
uint64_t last_total(const api_response& h, const std::string& series,
                    const std::string& key) {
  auto n = h.size("/series/" + series);
  if (n == 0)
    return 0;
  auto p = "/series/" + series + "/" + std::to_string(n - 1) + "/values/" + key;
  return h.has(p) ? h.u64(p) : 0;
}

} // namespace

TEST_CASE("chart history: the service admin reads the node's last hour of "
          "the charted counters, nobody else does",
          "[e2e][admin][history]") {
  test_node node{{"--chart-history-interval", "1"}};
  auto& api = node.api();
  auto org = create_org(api, "Acme", "admin@acme.example");

  // Without a token, with a wrong one, with a user's: refused, nothing
  // shown.
  auto anonymous = api.get("", "/admin/v1/history");
  CHECK(anonymous.status == 401);
  CHECK(anonymous.body.find("series") == std::string::npos);
  CHECK(api.get("not-a-token", "/admin/v1/history").status == 401);
  auto user = api.get(org.admin_token, "/admin/v1/history");
  CHECK(user.status == 403);
  CHECK(user.error_code() == "forbidden");
  CHECK(user.body.find("values") == std::string::npos);

  // Every series, sampled every second, an hour kept.
  api_response h;
  REQUIRE(crmsync::test::eventually([&] {
    h = api.get(admin_token, "/admin/v1/history");
    return h.status == 200 && h.size("/series/http") >= 2;
  }));
  INFO(h.describe());
  CHECK(h.i64("/interval_s") == 1);
  CHECK(h.u64("/capacity") == 3600);
  for (const char* s : {"http", "graph", "graph_throttled", "notifications"})
    CHECK(h.has(std::string{"/series/"} + s));
  // Points oldest first, each with its time.
  auto n = h.size("/series/http");
  for (size_t i = 1; i < n; ++i)
    CHECK(h.str("/series/http/" + std::to_string(i - 1) + "/at")
          < h.str("/series/http/" + std::to_string(i) + "/at"));

  // Requests answered 2xx and 4xx show in a later sample.
  auto ok_before = last_total(h, "http", "2xx");
  auto bad_before = last_total(h, "http", "4xx");
  for (int i = 0; i < 5; ++i)
    REQUIRE(api.get("", "/healthz").status == 200);
  for (int i = 0; i < 3; ++i)
    REQUIRE(api.get("", "/no/such/route").status == 404);
  api_response later;
  bool counted = crmsync::test::eventually([&] {
    later = api.get(admin_token, "/admin/v1/history?series=http");
    return later.status == 200
           && last_total(later, "http", "2xx") >= ok_before + 5
           && last_total(later, "http", "4xx") >= bad_before + 3;
  });
  INFO(later.describe());
  CHECK(counted);
  // Only the series asked for.
  CHECK(later.has("/series/http"));
  CHECK_FALSE(later.has("/series/graph"));

  auto two = api.get(admin_token,
                     "/admin/v1/history?series=graph,notifications,graph");
  INFO(two.describe());
  CHECK(two.status == 200);
  CHECK(two.has("/series/graph"));
  CHECK(two.has("/series/notifications"));
  CHECK_FALSE(two.has("/series/http"));

  // A series that does not exist: 400 naming the parameter.
  for (const char* bad : {"nope", "http,", "http,nope", ""}) {
    auto r
        = api.get(admin_token, std::string{"/admin/v1/history?series="} + bad);
    INFO(bad << ": " << r.describe());
    CHECK(r.status == 400);
    CHECK(r.error_code() == "invalid_field");
    CHECK(r.str("/error/field") == "series");
  }
  CHECK(api.get(admin_token, "/admin/v1/history?series=%zz").status == 400);
}
