#include "storage/org_rows.hpp"

#include <catch2/catch.hpp>
#include <map>

#include "storage/keys.hpp"
#include "storage/reminder_rows.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync;
using crmsync::storage::column;
namespace keys = crmsync::storage::keys;

namespace {

std::unique_ptr<storage::db> open_at(const std::string& path) {
  storage::db_options o;
  o.path = path;
  auto r = storage::db::open(o);
  REQUIRE(r);
  return std::move(*r);
}

/// Rows of organization `t` in every kind of place a row names its
/// organization; returns how many.
size_t put_org_rows(storage::write_batch& b, tenant_id t, user_id u,
                    const std::string& tag) {
  b.put(column::orgs, keys::org(t), "org");
  b.put(column::users, keys::user(t, u), "user");
  b.put(column::events, keys::event(t, event_id{7}), "event");
  b.put(column::audit, keys::audit(t, -5, 1), "audit");
  b.put(column::sync, keys::sync_request_key(t, u), "q");
  b.put(column::lookup, keys::email_lookup(tag + "@example.com"),
        keys::tenant_user_value(t, u));
  b.put(column::lookup, keys::user_lookup(u), keys::org(t));
  b.put(column::lookup, keys::join_lookup(t, "oid-" + tag), "request");
  reminder r;
  r.target = entity_key{entity_kind::calendar, t, u};
  r.due_ms = 1000;
  storage::reminder_rows::put(b, r, std::nullopt); // a due and an index row
  return 10;
}

} // namespace

TEST_CASE("the rows of an organization are found in every family, in "
          "bounded steps, and nothing of another one",
          "[storage][org_rows]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  tenant_id a{0x0100000000000001}, b_org{0x0100000000000002};
  storage::write_batch b;
  auto n = put_org_rows(b, a, user_id{11}, "a");
  put_org_rows(b, b_org, user_id{12}, "b");
  b.put(column::sessions, "s-state", "not an organization's");
  b.put(column::meta, "version", "1");
  REQUIRE_FALSE(d->write(b));

  for (size_t step : {1u, 3u, 1000u}) {
    storage::org_row_cursor rows{*d, {a.value}, storage::org_columns()};
    std::map<std::pair<int, std::string>, int> seen;
    bool done = false;
    int steps = 0;
    while (!done) {
      size_t this_step = 0;
      REQUIRE_FALSE(rows.next(
          step,
          [&](column c, std::string_view k, std::string_view v) {
            ++this_step;
            auto t = storage::row_tenant(c, k, v);
            REQUIRE(t);
            CHECK(*t == a);
            ++seen[{static_cast<int>(c), std::string{k}}];
          },
          done));
      CHECK(this_step <= step);
      REQUIRE(++steps < 100);
    }
    INFO("step " << step);
    CHECK(seen.size() == n);
    for (auto& [k, count] : seen)
      CHECK(count == 1);
  }
}

TEST_CASE("rows deleted between steps do not stop the walk",
          "[storage][org_rows]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  tenant_id a{0x0100000000000001}, other{0x0100000000000002};
  storage::write_batch b;
  put_org_rows(b, a, user_id{11}, "a");
  put_org_rows(b, other, user_id{12}, "b");
  REQUIRE_FALSE(d->write(b));
  storage::org_row_cursor rows{*d, {a.value}, storage::org_columns()};
  bool done = false;
  while (!done) {
    storage::write_batch del;
    REQUIRE_FALSE(rows.next(
        2,
        [&](column c, std::string_view k, std::string_view) {
          del.del(c, std::string{k});
        },
        done));
    REQUIRE_FALSE(d->write(del));
  }
  storage::org_row_cursor left{*d, {a.value}, storage::org_columns()};
  size_t of_a = 0;
  REQUIRE_FALSE(
      left.all([&](column, std::string_view, std::string_view) { ++of_a; }));
  CHECK(of_a == 0);
  storage::org_row_cursor others{*d, {other.value}, storage::org_columns()};
  size_t of_other = 0;
  REQUIRE_FALSE(others.all(
      [&](column, std::string_view, std::string_view) { ++of_other; }));
  CHECK(of_other == 10);
}

TEST_CASE("a CRM user's page session belongs to the organization its value "
          "names, the other sessions rows to none",
          "[storage][org_rows][sessions]") {
  tenant_id a{0x0100000000000001}, other{0x0100000000000002};
  auto member = keys::page_session("hash-a");
  auto value = keys::page_session_value(5000, a, user_id{11}, "{}");
  auto t = storage::row_tenant(column::sessions, member, value);
  REQUIRE(t);
  CHECK(*t == a);
  // No organization (a person who is no CRM user), the older form
  // (expiry, then the body), a cut value, and the other kinds of rows.
  CHECK_FALSE(storage::row_tenant(
      column::sessions, member,
      keys::page_session_value(5000, tenant_id{}, user_id{}, "{}")));
  std::string older;
  keys::put_be64(older, 5000);
  older += R"({"org":1})";
  CHECK_FALSE(storage::row_tenant(column::sessions, member, older));
  CHECK_FALSE(
      storage::row_tenant(column::sessions, member, value.substr(0, 12)));
  CHECK_FALSE(
      storage::row_tenant(column::sessions, keys::signin_state("s"), value));
  CHECK_FALSE(
      storage::row_tenant(column::sessions, keys::o365_session("p"), value));
  auto head = keys::parse_page_session(value);
  REQUIRE(head);
  CHECK(head->expires_ms == 5000);
  CHECK(head->user == user_id{11});
  CHECK(head->body == "{}");

  // A shard move walks them with the organization's rows.
  test::temp_dir dir;
  auto d = open_at(dir.path());
  storage::write_batch b;
  b.put(column::sessions, member, value);
  b.put(column::sessions, keys::page_session("hash-other"),
        keys::page_session_value(5000, other, user_id{12}, "{}"));
  b.put(column::sessions, keys::page_session("hash-none"),
        keys::page_session_value(5000, tenant_id{}, user_id{}, "{}"));
  b.put(column::sessions, keys::signin_state("state"), value);
  REQUIRE_FALSE(d->write(b));
  storage::org_row_cursor rows{*d, {a.value}, {column::sessions}};
  std::vector<std::string> seen;
  REQUIRE_FALSE(rows.all([&](column, std::string_view k, std::string_view) {
    seen.emplace_back(k);
  }));
  CHECK(seen == std::vector<std::string>{member});
}
