// End-to-end: GET /admin/v1/memory (issue 13, t13-mem) and the release of
// freed memory after passivations (--memory-trim-interval).
#include <catch2/catch.hpp>

#include "tests/support/api_client.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync::e2e;
using crmsync::test::eventually;

namespace {

// A new organization's tenant actor goes live and, idle for a second, is
// passivated: the node's `n`th passivation.
void passivate_one_tenant(api_client& api, int n) {
  auto name = "Sleepy" + std::to_string(n);
  create_org(api, name, "admin@sleepy" + std::to_string(n) + ".example");
  REQUIRE(eventually([&] {
    auto m = api.get(admin_token, "/admin/v1/status");
    return m.status == 200 && m.i64("/actors/tenant/passivations") >= n
           && m.i64("/actors/tenant/live") == 0;
  }));
}

} // namespace

TEST_CASE("admin memory report: resident size, allocator, RocksDB, actors, "
          "service admin only",
          "[e2e][admin][memory]") {
  test_node node;
  auto& api = node.api();
  auto org = create_org(api, "Acme", "admin@acme.example");
  auto sam
      = create_user(api, org.admin_token, org.id, "sam@acme.example", "Sam");

  auto m = api.get(admin_token, "/admin/v1/memory");
  E2E_REQUIRE_STATUS(m, 200);
  CHECK(m.u64("/rss_bytes") > (1u << 20));
  CHECK(m.u64("/malloc/in_use_bytes") > 0);
  CHECK(m.u64("/malloc/heap_bytes") > 0);
  CHECK(m.u64("/malloc/arenas") >= 1);
  // crmsyncd is linked with jemalloc (bin/CMakeLists.txt), and the report
  // reads jemalloc's counters, not glibc's idle arenas.
  CHECK(m.str("/malloc/allocator") == "jemalloc");
  CHECK(m.has("/malloc/free_bytes"));
  CHECK(m.has("/malloc/mmap_bytes"));
  CHECK(m.u64("/trim/count") == 0);
  // The node's bounds: a 64 MiB block cache for data, index and filters.
  CHECK(m.u64("/rocksdb/block_cache_capacity_bytes") == 64u << 20);
  CHECK(m.u64("/rocksdb/memtable_bytes") > 0); // the org and users written
  CHECK(m.has("/rocksdb/block_cache_bytes"));
  CHECK(m.has("/rocksdb/table_readers_bytes"));
  CHECK(m.i64("/actors/tenant") == 1);
  CHECK(m.i64("/actors/calendar") == 0);
  // No Office 365 configured: no sync or Graph maps to report.
  CHECK_FALSE(m.has("/entries/sync_users"));
  CHECK_FALSE(m.has("/entries/graph_mailbox_budgets"));

  // Only the service admin reads it.
  auto as_org_admin = api.get(org.admin_token, "/admin/v1/memory");
  CHECK(as_org_admin.status == 403);
  CHECK(as_org_admin.error_code() == "forbidden");
  CHECK(api.get(sam.token, "/admin/v1/memory").status == 403);
  CHECK(api.get("", "/admin/v1/memory").status == 401);
  CHECK(api.get("not-a-token", "/admin/v1/memory").status == 401);
  // Read-only.
  CHECK(api.post(admin_token, "/admin/v1/memory", "{}").status == 405);
}

TEST_CASE("freed memory is handed back after passivations, at most every "
          "--memory-trim-interval, never when it is 0",
          "[e2e][admin][memory]") {
  SECTION("on") {
    test_node node{{"--idle-timeout", "1", "--sweep-interval-ms", "100",
                    "--memory-trim-interval", "1"}};
    auto& api = node.api();
    passivate_one_tenant(api, 1);
    uint64_t count = 0;
    CHECK(eventually([&] {
      auto m = api.get(admin_token, "/admin/v1/memory");
      count = m.status == 200 ? m.u64("/trim/count") : 0;
      return count >= 1;
    }));
    auto m = api.get(admin_token, "/admin/v1/memory");
    CHECK(m.has("/trim/last_took_us"));
    CHECK(m.has("/trim/last_released_bytes"));
  }
  SECTION("off") {
    test_node node{{"--idle-timeout", "1", "--sweep-interval-ms", "100",
                    "--memory-trim-interval", "0"}};
    auto& api = node.api();
    passivate_one_tenant(api, 1);
    // The second passivation is a sweep that runs after the first
    // tenant's end was seen: a trim would have come with it.
    passivate_one_tenant(api, 2);
    CHECK(api.get(admin_token, "/admin/v1/memory").u64("/trim/count") == 0);
  }
}
