// The reminders column family: a data directory written before it existed
// opens (and gains it), due rows sort by due time, and the index finds,
// replaces and removes a target's reminder of a kind in one batch.
#include "storage/reminder_rows.hpp"

#include <memory>
#include <vector>

#include <catch2/catch.hpp>
#include <rocksdb/db.h>

#include "tests/support/temp_dir.hpp"

using namespace crmsync;
using crmsync::storage::column;
namespace rows = crmsync::storage::reminder_rows;

namespace {

std::unique_ptr<storage::db> open_at(const std::string& path) {
  storage::db_options o;
  o.path = path;
  auto r = storage::db::open(o);
  REQUIRE(r);
  return std::move(*r);
}

entity_key calendar(uint64_t t, uint64_t u) {
  return entity_key{entity_kind::calendar, tenant_id{t}, user_id{u}};
}

std::vector<reminder> due_rows(storage::db& d) {
  std::vector<reminder> out;
  REQUIRE_FALSE(d.scan(column::reminders, rows::due_begin(INT64_MIN),
                       rows::due_end(),
                       [&](std::string_view k, std::string_view v) {
                         auto r = rows::decode_due(k, v);
                         REQUIRE(r);
                         out.push_back(*r);
                         return true;
                       }));
  return out;
}

} // namespace

TEST_CASE("a data directory written without the reminders family opens",
          "[storage][reminders]") {
  test::temp_dir dir;
  {
    // The layout of data format 1 before reminders: these 16 families.
    const char* before[] = {
        "meta",  "orgs",        "users", "events",   "event_index", "lookup",
        "sync",  "invites",     "joins", "audit",    "outbox",      "sessions",
        "links", "sync_outbox", "inbox", "conflicts"};
    rocksdb::Options o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    descs.emplace_back(rocksdb::kDefaultColumnFamilyName,
                       rocksdb::ColumnFamilyOptions{});
    for (auto* name : before)
      descs.emplace_back(name, rocksdb::ColumnFamilyOptions{});
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(o, dir.path(), descs, &handles, &raw).ok());
    REQUIRE(raw->Put({}, handles[1], "format_version", "1").ok());
    REQUIRE(raw->Put({}, handles[2], "org-1", "an org").ok());
    for (auto* h : handles)
      REQUIRE(raw->DestroyColumnFamilyHandle(h).ok());
    REQUIRE(raw->Close().ok());
    delete raw;
  }
  {
    auto d = open_at(dir.path());
    std::string v;
    bool found = false;
    REQUIRE_FALSE(d->get(column::orgs, "org-1", v, found));
    CHECK(found);
    CHECK(v == "an org");
    storage::write_batch b;
    rows::put(b, reminder{calendar(1, 2), reminder_kind::reconcile, 5, 0},
              std::nullopt);
    REQUIRE_FALSE(d->write(b));
  }
  auto d = open_at(dir.path());
  CHECK(due_rows(*d).size() == 1);
}

TEST_CASE("due rows sort by due time, then target", "[storage][reminders]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  std::vector<int64_t> dues = {1'800'000'000'255,
                               1'800'000'000'256,
                               1'799'999'999'999,
                               1'800'000'065'536,
                               -5,
                               0,
                               1'800'000'000'001};
  storage::write_batch b;
  for (size_t i = 0; i < dues.size(); ++i)
    rows::put(
        b,
        reminder{calendar(9 - i, i + 1), reminder_kind::reconcile, dues[i], 0},
        std::nullopt);
  REQUIRE_FALSE(d->write(b));
  auto got = due_rows(*d);
  REQUIRE(got.size() == dues.size());
  std::sort(dues.begin(), dues.end());
  for (size_t i = 0; i < dues.size(); ++i)
    CHECK(got[i].due_ms == dues[i]);
  // A scan from a time starts there.
  size_t later = 0;
  REQUIRE_FALSE(d->scan(column::reminders, rows::due_begin(1'800'000'000'000),
                        rows::due_end(),
                        [&](std::string_view, std::string_view) {
                          ++later;
                          return true;
                        }));
  CHECK(later == 4);
}

TEST_CASE("the index replaces and removes a target's reminder of a kind",
          "[storage][reminders]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  auto target = calendar(3, 4);
  reminder r{target, reminder_kind::renew_subscription, 1'000, 60'000};
  storage::write_batch b;
  rows::put(b, r, std::nullopt);
  REQUIRE_FALSE(d->write(b));
  std::optional<int64_t> due;
  REQUIRE_FALSE(rows::find(*d, target, reminder_kind::renew_subscription, due));
  REQUIRE(due);
  CHECK(*due == 1'000);
  REQUIRE_FALSE(rows::find(*d, target, reminder_kind::reconcile, due));
  CHECK_FALSE(due);
  storage::write_batch replace;
  r.due_ms = 2'000;
  rows::put(replace, r, 1'000);
  REQUIRE_FALSE(d->write(replace));
  auto got = due_rows(*d);
  REQUIRE(got.size() == 1);
  CHECK(got[0].due_ms == 2'000);
  CHECK(got[0].period_ms == 60'000);
  CHECK(got[0].target == target);
  CHECK(got[0].kind == reminder_kind::renew_subscription);
  storage::write_batch del;
  rows::remove(del, target, reminder_kind::renew_subscription, 2'000);
  REQUIRE_FALSE(d->write(del));
  CHECK(due_rows(*d).empty());
  REQUIRE_FALSE(rows::find(*d, target, reminder_kind::renew_subscription, due));
  CHECK_FALSE(due);
}
