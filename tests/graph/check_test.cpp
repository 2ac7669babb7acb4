// The convergence checker (sync/check.hpp) against the in-process
// graph-emulator at 100 ms latency: every user of a 100-user organization
// is read, a bounded number at once, and the differences are found.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/time_format.hpp"
#include "graph/client.hpp"
#include "storage/codec.hpp"
#include "storage/db.hpp"
#include "storage/keys.hpp"
#include "sync/check.hpp"
#include "tests/graph/fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync;
using graph_test::emulator;
using storage::column;
using namespace std::chrono_literals;

namespace {

constexpr int64_t hour_ms = 3'600'000;

std::string field(const std::string& json, const std::string& name) {
  auto key = "\"" + name + "\":\"";
  auto at = json.find(key);
  if (at == std::string::npos)
    return {};
  at += key.size();
  return json.substr(at, json.find('"', at) - at);
}

} // namespace

TEST_CASE("the checker reads every user of a 100-user organization at 100 ms "
          "latency, 16 at a time, and finds what differs",
          "[graph][check]") {
  emulator e;
  const auto tenant = e.seed_tenant_with_users("fabrikam.example", 100);
  graph::client c{e.config()};
  std::vector<std::string> ids;
  graph::error err;
  {
    std::vector<std::string> users;
    INFO(err.describe());
    REQUIRE(c.list_all(tenant, "/users?$select=id", users, err));
    for (auto& u : users)
      ids.push_back(field(u, "id"));
  }
  REQUIRE(ids.size() == 100);

  test::temp_dir dir;
  storage::db_options opts;
  opts.path = dir.path();
  auto opened = storage::db::open(opts);
  REQUIRE(opened);
  auto& db = **opened;
  const tenant_id org{0x0123456789abcdefULL};
  storage::write_batch b;
  org_record o;
  o.id = org;
  o.o365_tenant = tenant;
  b.put(column::orgs, storage::keys::org(org), storage::codec::encode(o));
  // Every user has the product's calendar; every fourth one also has an
  // event there that the CRM does not know.
  const auto now = e.clock()();
  size_t with_stray_event = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    graph::response res;
    INFO(err.describe());
    REQUIRE(c.call(tenant, ids[i], "POST", "/users/" + ids[i] + "/calendars",
                   R"({"name":"CRM"})", res, err));
    const auto calendar = field(res.body, "id");
    if (i % 4 == 0) {
      auto body = R"({"subject":"stray","start":{"dateTime":")"
                  + format_rfc3339(now + 2 * hour_ms).substr(0, 19)
                  + R"(","timeZone":"UTC"},"end":{"dateTime":")"
                  + format_rfc3339(now + 3 * hour_ms).substr(0, 19)
                  + R"(","timeZone":"UTC"}})";
      REQUIRE(c.call(tenant, ids[i], "POST",
                     "/users/" + ids[i] + "/calendars/" + calendar + "/events",
                     body, res, err));
      ++with_stray_event;
    }
    user_record u;
    u.id = user_id{i + 1};
    u.org = org;
    u.o365_tenant = tenant;
    u.o365_user = ids[i];
    b.put(column::users, storage::keys::user(org, u.id),
          storage::codec::encode(u));
    calendar_status s;
    s.org = org;
    s.user = u.id;
    s.state = calendar_state::active;
    s.office365_calendar_id = calendar;
    b.put(column::sync,
          storage::keys::sync_state(org, u.id, entity_kind::calendar),
          storage::codec::encode(s));
  }
  REQUIRE_FALSE(db.write(b));

  e.faults(R"({"latency_ms":100})");
  sync::check_progress progress;
  std::mutex mtx;
  std::optional<std::vector<sync::user_check>> result;
  sync::check_org(
      db, c, org, now - 24 * hour_ms, now + 24 * hour_ms,
      [&](std::vector<sync::user_check> users) {
        std::lock_guard<std::mutex> guard{mtx};
        result = std::move(users);
      },
      16, &progress);
  REQUIRE(test::eventually(
      [&] {
        std::lock_guard<std::mutex> guard{mtx};
        return result.has_value();
      },
      60s));
  std::lock_guard<std::mutex> guard{mtx};
  REQUIRE(result->size() == 100);
  size_t stray = 0;
  for (size_t i = 0; i < result->size(); ++i) {
    auto& u = (*result)[i];
    INFO(u.error);
    CHECK(u.error.empty());
    CHECK(u.user == user_id{i + 1}); // in user order
    for (auto& d : u.differences) {
      CHECK(d.kind == "crm_missing");
      ++stray;
    }
  }
  CHECK(stray == with_stray_event);
  CHECK(progress.users_total == 100);
  CHECK(progress.users_done == 100);
  CHECK(progress.differences == with_stray_event);
  // Sixteen users' calendars were on the wire at once, never more.
  CHECK(c.stats().max_in_flight == 16);
}
