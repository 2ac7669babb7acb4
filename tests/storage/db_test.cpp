#include "storage/db.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "protocol/errors.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync;
using crmsync::storage::column;

namespace {

std::unique_ptr<storage::db> open_at(const std::string& path) {
  storage::db_options o;
  o.path = path;
  auto r = storage::db::open(o);
  REQUIRE(r);
  return std::move(*r);
}

std::string read(storage::db& d, column c, const std::string& k) {
  std::string v;
  bool found = false;
  REQUIRE_FALSE(d.get(c, k, v, found));
  return found ? v : std::string{"<absent>"};
}

} // namespace

TEST_CASE("a batch spans column families and survives a reopen",
          "[storage][db]") {
  test::temp_dir dir;
  {
    auto d = open_at(dir.path());
    storage::write_batch b;
    b.put(column::orgs, "o1", "org");
    b.put(column::users, "o1u1", "user");
    b.put(column::events, "o1e1", "event");
    b.put(column::event_index, "o1i1", "");
    REQUIRE_FALSE(d->write(b));
    storage::write_batch del;
    del.del(column::events, "o1e1");
    del.put(column::events, "o1e2", "event2");
    REQUIRE_FALSE(d->write(del));
  }
  auto d = open_at(dir.path());
  CHECK(read(*d, column::orgs, "o1") == "org");
  CHECK(read(*d, column::users, "o1u1") == "user");
  CHECK(read(*d, column::events, "o1e1") == "<absent>");
  CHECK(read(*d, column::events, "o1e2") == "event2");
  CHECK(read(*d, column::event_index, "o1i1").empty());
  // Families are separate key spaces.
  CHECK(read(*d, column::users, "o1") == "<absent>");
}

TEST_CASE("a failed claim writes nothing of its batch", "[storage][db]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  storage::write_batch first;
  first.put(column::lookup, "email", "owner-a");
  first.put(column::users, "a", "user a");
  REQUIRE_FALSE(
      d->write_claimed(first, {{column::lookup, "email", "owner-a"}}));
  storage::write_batch second;
  second.put(column::lookup, "email", "owner-b");
  second.put(column::users, "b", "user b");
  second.put(column::orgs, "count", "2");
  auto err = d->write_claimed(second, {{column::lookup, "email", "owner-b"}});
  REQUIRE(err);
  CHECK(to_api_error(err).status == 409);
  CHECK(read(*d, column::lookup, "email") == "owner-a");
  CHECK(read(*d, column::users, "b") == "<absent>");
  CHECK(read(*d, column::orgs, "count") == "<absent>");
  // Re-claiming with the same value is idempotent.
  CHECK_FALSE(d->write_claimed(first, {{column::lookup, "email", "owner-a"}}));
}

TEST_CASE("concurrent claimants of one key: exactly one wins",
          "[storage][db]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> wins{0};
    std::string key = "k" + std::to_string(round);
    crmsync::test::thread_guard threads;
    for (int t = 0; t < 4; ++t)
      threads.spawn([&, t] {
        storage::write_batch b;
        std::string owner = "t" + std::to_string(t);
        b.put(column::lookup, key, owner);
        b.put(column::users, key + owner, "x");
        if (!d->write_claimed(b, {{column::lookup, key, owner}}))
          ++wins;
      });
    threads.join();
    CHECK(wins == 1);
  }
}

TEST_CASE("scan visits a range in key order and can stop early",
          "[storage][db]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  storage::write_batch b;
  for (char c = 'a'; c <= 'f'; ++c)
    b.put(column::events, std::string{'p', c}, std::string{c});
  b.put(column::events, "q", "outside");
  REQUIRE_FALSE(d->write(b));
  std::string seen;
  REQUIRE_FALSE(d->scan(column::events, "pb", "pe",
                        [&](std::string_view, std::string_view v) {
                          seen += v;
                          return true;
                        }));
  CHECK(seen == "bcd");
  seen.clear();
  REQUIRE_FALSE(d->scan(column::events, "p", "",
                        [&](std::string_view, std::string_view v) {
                          seen += v;
                          return seen.size() < 2;
                        }));
  CHECK(seen == "ab");
}

TEST_CASE("a database of an unknown format is refused", "[storage][db]") {
  test::temp_dir dir;
  {
    auto d = open_at(dir.path());
    storage::write_batch b;
    b.put(column::meta, "format_version", "99");
    REQUIRE_FALSE(d->write(b));
  }
  storage::db_options o;
  o.path = dir.path();
  auto r = storage::db::open(o);
  REQUIRE_FALSE(r);
  auto e = to_api_error(r.error());
  CHECK(e.code == "unsupported_format");
  CHECK(e.message.find("99") != std::string::npos);
}

TEST_CASE("opening a path that cannot hold a database fails cleanly",
          "[storage][db]") {
  storage::db_options o;
  o.path = "/proc/crmsync-cannot-exist/db";
  auto r = storage::db::open(o);
  REQUIRE_FALSE(r);
  CHECK(to_api_error(r.error()).code == "storage_failure");
}

TEST_CASE("the queue tables keep their row counts through writes and reopens",
          "[storage][db]") {
  test::temp_dir dir;
  {
    auto d = open_at(dir.path());
    CHECK(d->rows(column::inbox) == 0);
    storage::write_batch b;
    b.put(column::inbox, "u1a", "x");
    b.put(column::inbox, "u1b", "x");
    b.put(column::sync_outbox, "u1s1", "c");
    b.put(column::outbox, "m1", "mail");
    b.put(column::events, "e1", "not counted");
    REQUIRE_FALSE(d->write(b));
    CHECK(d->rows(column::inbox) == 2);
    CHECK(d->rows(column::sync_outbox) == 1);
    CHECK(d->rows(column::outbox) == 1);
    CHECK(d->rows(column::events) == 0);

    // Overwriting a row, deleting a missing one: no change.
    storage::write_batch again;
    again.put(column::inbox, "u1a", "y");
    again.del(column::inbox, "nothing-here");
    REQUIRE_FALSE(d->write(again));
    CHECK(d->rows(column::inbox) == 2);

    // One batch that adds and removes the same key: no change either.
    storage::write_batch both;
    both.put(column::sync_outbox, "u1s2", "c");
    both.del(column::sync_outbox, "u1s2");
    both.del(column::outbox, "m1");
    REQUIRE_FALSE(d->write(both));
    CHECK(d->rows(column::sync_outbox) == 1);
    CHECK(d->rows(column::outbox) == 0);

    // Through write_claimed as well.
    storage::write_batch claimed;
    claimed.put(column::inbox, "u2a", "x");
    REQUIRE_FALSE(d->write_claimed(claimed, {}));
    CHECK(d->rows(column::inbox) == 3);
  }
  auto d = open_at(dir.path());
  CHECK(d->rows(column::inbox) == 3);
  CHECK(d->rows(column::sync_outbox) == 1);
  CHECK(d->rows(column::outbox) == 0);
}

TEST_CASE("row counts stay exact when threads write the same queue keys",
          "[storage][db]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  // Every thread puts and deletes the same few keys: a count that read
  // a key's existence apart from its write would drift.
  crmsync::test::thread_guard threads;
  for (int t = 0; t < 4; ++t)
    threads.spawn([&d, t] {
      for (int i = 0; i < 500; ++i) {
        storage::write_batch b;
        auto key = "k" + std::to_string((i + t) % 5);
        if ((i + t) % 3 == 0)
          b.del(column::inbox, key);
        else
          b.put(column::inbox, key, "x");
        if (d->write(b))
          return;
      }
    });
  threads.join();
  uint64_t actual = 0;
  REQUIRE_FALSE(d->scan(column::inbox, "", "", [&](auto, auto) {
    ++actual;
    return true;
  }));
  CHECK(d->rows(column::inbox) == actual);
}

namespace {

/// Records what the database asks of the cluster's claims (etcd in a
/// cluster, ADR 0007); refuses keys it is told are taken elsewhere.
struct recorded_claims : storage::global_claims {
  std::vector<std::string> taken_elsewhere;
  std::vector<storage::claim> asked;
  std::vector<storage::claim> released;

  caf::error take(const std::vector<storage::claim>& claims,
                  std::vector<storage::claim>& made) override {
    asked.insert(asked.end(), claims.begin(), claims.end());
    for (auto& c : claims)
      for (auto& k : taken_elsewhere)
        if (c.key == k)
          return make_crm_error(crm_errc::conflict, "claim_taken", c.key);
    made = claims;
    return caf::none;
  }
  void release(const std::vector<storage::claim>& held) override {
    released.insert(released.end(), held.begin(), held.end());
  }
};

} // namespace

TEST_CASE("global claims: the cluster decides after the local check, and "
          "deleting a claimed lookup row releases it with its value",
          "[storage][db]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  auto g = std::make_shared<recorded_claims>();
  d->set_global_claims(g);

  // Only the globally unique lookups go to the cluster (an e-mail, not a
  // subscription id).
  storage::write_batch first;
  first.put(column::lookup, "ea@x", "owner-a");
  first.put(column::lookup, "nsub1", "t1");
  REQUIRE_FALSE(d->write_claimed(first, {{column::lookup, "ea@x", "owner-a"},
                                         {column::lookup, "nsub1", "t1"}}));
  REQUIRE(g->asked.size() == 1);
  CHECK(g->asked[0].key == "ea@x");

  // Taken on another node: refused with the key, nothing written here.
  g->taken_elsewhere = {"eb@x"};
  storage::write_batch second;
  second.put(column::lookup, "eb@x", "owner-b");
  second.put(column::users, "u", "row");
  auto err = d->write_claimed(second, {{column::lookup, "eb@x", "owner-b"}});
  REQUIRE(err);
  CHECK(to_api_error(err).message == "eb@x");
  CHECK(read(*d, column::lookup, "eb@x") == "<absent>");
  CHECK(read(*d, column::users, "u") == "<absent>");

  // A deletion gives the claim up with the value this node held; other
  // lookups and a shard move's removal of the old copy do not.
  storage::write_batch moved;
  moved.del(column::lookup, "ea@x");
  REQUIRE_FALSE(d->write(moved, storage::claims_effect::keep));
  CHECK(g->released.empty());
  REQUIRE_FALSE(d->write(first));
  storage::write_batch gone;
  gone.del(column::lookup, "ea@x");
  gone.del(column::lookup, "nsub1");
  gone.del(column::lookup, "enever@x"); // not held here: nothing to give up
  REQUIRE_FALSE(d->write(gone));
  REQUIRE(g->released.size() == 1);
  CHECK(g->released[0].key == "ea@x");
  CHECK(g->released[0].value == "owner-a");
}

TEST_CASE("multi_get reads keys of several families at once, absent ones "
          "empty",
          "[storage][db]") {
  test::temp_dir dir;
  auto d = open_at(dir.path());
  storage::write_batch b;
  b.put(column::sync, "o1u1s", std::string("st\0tus", 6));
  b.put(column::sync, "o1u1r", "request");
  b.put(column::orgs, "o1", "org");
  b.put(column::users, "o1u1", "user");
  REQUIRE_FALSE(d->write(b));
  // The same key in another family is another record.
  std::vector<std::optional<std::string>> v{std::string{"stale"}};
  REQUIRE_FALSE(d->multi_get({{column::sync, "o1u1r"},
                              {column::users, "o1u1"},
                              {column::sync, "o1u1t"},
                              {column::orgs, "o1"},
                              {column::users, "o1u1r"},
                              {column::sync, "o1u1s"}},
                             v));
  REQUIRE(v.size() == 6);
  CHECK(v[0] == std::optional<std::string>{"request"});
  CHECK(v[1] == std::optional<std::string>{"user"});
  CHECK_FALSE(v[2].has_value());
  CHECK(v[3] == std::optional<std::string>{"org"});
  CHECK_FALSE(v[4].has_value());
  CHECK(v[5] == std::optional<std::string>{std::string("st\0tus", 6)});
  // Each value is what get() reads, also after a flush to table files.
  REQUIRE_FALSE(d->flush());
  REQUIRE_FALSE(d->multi_get({{column::orgs, "o1"}, {column::orgs, "o2"}}, v));
  REQUIRE(v.size() == 2);
  CHECK(v[0] == std::optional<std::string>{read(*d, column::orgs, "o1")});
  CHECK_FALSE(v[1].has_value());
  REQUIRE_FALSE(d->multi_get({}, v));
  CHECK(v.empty());
}
