// Replicated shards (ADR 0008), below the transport: the shard map with
// followers and epochs as etcd stores it, a follower applying a primary's
// batches in order and refusing an older epoch's, and a deposed primary
// refusing its own writes. Real RocksDB in a temporary directory.
// t15-repl.
#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "cluster/replication.hpp"
#include "cluster/shard_roles.hpp"
#include "cluster/shards.hpp"
#include "protocol/errors.hpp"
#include "protocol/type_ids.hpp"
#include "storage/keys.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync;
using namespace crmsync::cluster;

namespace {

constexpr uint32_t shards = 4;

/// A tenant whose shard (of `shards`) is `shard`.
tenant_id tenant_in(uint32_t shard, uint64_t from = 1) {
  for (uint64_t v = from;; ++v)
    if (shard_of(tenant_id{v}, shards) == shard)
      return tenant_id{v};
}

repl_row org_row(tenant_id t, std::string value) {
  return repl_row{static_cast<uint8_t>(storage::column::orgs), false,
                  storage::keys::org(t), std::move(value)};
}

std::string stored_org(storage::db& db, tenant_id t) {
  std::string v;
  bool found = false;
  REQUIRE(!db.get(storage::column::orgs, storage::keys::org(t), v, found));
  return found ? v : std::string{"<absent>"};
}

struct fixture {
  test::temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<storage::db> db;

  fixture() {
    register_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    storage::db_options o;
    o.path = dir.path() + "/db";
    auto opened = storage::db::open(o);
    REQUIRE(opened);
    db = std::move(*opened);
  }

  std::shared_ptr<replicator> make(const std::string& self) {
    replication_config rc;
    rc.ack_timeout = std::chrono::milliseconds(200);
    return std::make_shared<replicator>(
        *sys, *db, self, shards, rc,
        [](const std::string&) { return caf::actor{}; });
  }
};

map_record roles(const std::string& owner, const std::string& follower,
                 int64_t epoch) {
  map_record m;
  for (uint32_t s = 0; s < shards; ++s) {
    m.owners.push_back(owner);
    m.followers.push_back({follower});
    m.epochs.push_back(epoch);
  }
  return m;
}

} // namespace

TEST_CASE("replication: a map without followers (before replication) still "
          "reads, a map with them round-trips",
          "[cluster][replication]") {
  map_record old;
  REQUIRE(decode_map_record(R"({"shard_count":2,"owners":["n1","n2"]})", old));
  CHECK(old.owners == std::vector<std::string>{"n1", "n2"});
  REQUIRE(old.followers.size() == 2);
  CHECK(old.followers[0].empty());
  CHECK(old.epochs == std::vector<int64_t>{0, 0});

  auto m = initial_map({"n1", "n2", "n3"}, 16, 2);
  map_record back;
  REQUIRE(decode_map_record(encode_map_record(m), back));
  CHECK(back.owners == m.owners);
  CHECK(back.followers == m.followers);
  CHECK(back.epochs == m.epochs);
  for (uint32_t s = 0; s < 16; ++s) {
    // The owner is rendezvous' first choice, the follower its second.
    auto order = rendezvous_order(s, {"n3", "n1", "n2"});
    CHECK(m.owners[s] == rendezvous_owner(s, {"n1", "n2", "n3"}));
    CHECK(m.owners[s] == order[0]);
    REQUIRE(m.followers[s].size() == 1);
    CHECK(m.followers[s][0] == order[1]);
    CHECK(m.epochs[s] == 1);
  }
  // Followers of another length, or a negative epoch, do not parse.
  map_record bad;
  CHECK_FALSE(
      decode_map_record(R"({"owners":["n1","n2"],"followers":[["n2"]]})", bad));
  CHECK_FALSE(decode_map_record(
      R"({"owners":["n1"],"followers":[[]],"epochs":[-1]})", bad));
}

TEST_CASE("replication: a failover bumps the epoch, repairs replace followers "
          "that left and fill up to the factor",
          "[cluster][replication]") {
  auto m = initial_map({"n1", "n2", "n3"}, 8, 2);
  auto s = 0u;
  auto owner = m.owners[s];
  auto follower = m.followers[s][0];
  take_ownership(m, s, follower);
  CHECK(m.owners[s] == follower);
  CHECK(m.epochs[s] == 2);
  CHECK(m.followers[s].empty());
  // The old owner is gone: the new one fills its followers from the live.
  std::set<std::string> live{"n1", "n2", "n3"};
  live.erase(owner);
  CHECK(repair_followers(m, follower, live, 2));
  REQUIRE(m.followers[s].size() == 1);
  CHECK(m.followers[s][0] != owner);
  CHECK(m.followers[s][0] != follower);
  CHECK_FALSE(repair_followers(m, follower, live, 2));
  // Factor 1: no followers at all.
  CHECK(repair_followers(m, follower, live, 1));
  CHECK(m.followers[s].empty());
}

TEST_CASE("replication: a follower applies batches in order, reports a gap, "
          "and refuses a batch of an older epoch",
          "[cluster][replication]") {
  fixture f;
  auto r = f.make("n2");
  r->set_roles(roles("n1", "n2", 3));
  uint32_t shard = 1;
  auto t = tenant_in(shard);

  // Nothing held yet: a batch asks for a snapshot first.
  repl_push first;
  first.entries.push_back(repl_entry{shard, 3, 1, {org_row(t, "v1")}});
  auto got = r->apply_push("n1", first);
  REQUIRE(got.items.size() == 1);
  CHECK(got.items[0].status == repl_result::rebuild);
  CHECK(stored_org(*f.db, t) == "<absent>");

  repl_snapshot begin{shard, 3, 0, repl_snapshot::begin, {}};
  CHECK(r->apply_snapshot("n1", begin).status == repl_result::ok);
  repl_snapshot end{shard, 3, 0, repl_snapshot::end, {}};
  CHECK(r->apply_snapshot("n1", end).status == repl_result::ok);
  CHECK(r->held(shard).epoch == 3);

  got = r->apply_push("n1", first);
  REQUIRE(got.items.size() == 1);
  CHECK(got.items[0].status == repl_result::ok);
  CHECK(got.items[0].applied == 1);
  CHECK(stored_org(*f.db, t) == "v1");

  // Sequence 3 before 2: a gap, nothing written.
  repl_push skip;
  skip.entries.push_back(repl_entry{shard, 3, 3, {org_row(t, "v3")}});
  got = r->apply_push("n1", skip);
  REQUIRE(got.items.size() == 1);
  CHECK(got.items[0].status == repl_result::gap);
  CHECK(got.items[0].applied == 1);
  CHECK(stored_org(*f.db, t) == "v1");

  // A deposed primary's batch (epoch 2 < 3): refused, nothing written.
  repl_push stale;
  stale.entries.push_back(repl_entry{shard, 2, 2, {org_row(t, "stale")}});
  got = r->apply_push("n1", stale);
  REQUIRE(got.items.size() == 1);
  CHECK(got.items[0].status == repl_result::stale);
  CHECK(got.items[0].epoch == 3);
  CHECK(stored_org(*f.db, t) == "v1");
  // ... also when the follower learned the newer epoch from the map only.
  r->set_roles(roles("n3", "n2", 4));
  repl_push old_epoch;
  old_epoch.entries.push_back(repl_entry{shard, 3, 2, {org_row(t, "old")}});
  got = r->apply_push("n1", old_epoch);
  REQUIRE(got.items.size() == 1);
  CHECK(got.items[0].status == repl_result::stale);
  CHECK(stored_org(*f.db, t) == "v1");
  repl_snapshot old_snapshot{shard, 3, 9, repl_snapshot::begin, {}};
  CHECK(r->apply_snapshot("n1", old_snapshot).status == repl_result::stale);
  CHECK(stored_org(*f.db, t) == "v1");

  // Not from a member, or rows of another shard: refused.
  repl_push anonymous;
  anonymous.entries.push_back(repl_entry{shard, 4, 1, {org_row(t, "x")}});
  got = r->apply_push("", anonymous);
  REQUIRE(got.items.size() == 1);
  CHECK(got.items[0].status == repl_result::refused);
  CHECK(stored_org(*f.db, t) == "v1");
}

TEST_CASE("replication: a primary numbers its shard's writes, once deposed "
          "it refuses to write the shard",
          "[cluster][replication]") {
  fixture f;
  auto r = f.make("n1");
  storage::set_write_hook(*f.db, r);
  // Factor 2, ack 1, but no follower in the map: nothing to wait for.
  map_record m = roles("n1", "n2", 5);
  for (auto& fl : m.followers)
    fl.clear();
  r->set_roles(m);
  uint32_t shard = 2;
  auto t = tenant_in(shard);
  storage::write_batch b;
  b.put(storage::column::orgs, storage::keys::org(t), "mine");
  REQUIRE(!f.db->write(b));
  REQUIRE(!f.db->write(b));
  auto h = r->held(shard);
  CHECK(h.epoch == 5);
  CHECK(h.seq == 2);
  CHECK(stored_org(*f.db, t) == "mine");

  // A follower that never answers: the write is stored here but not
  // acknowledged (503 replication_timeout), never a silent success.
  r->set_roles(roles("n1", "n2", 5));
  storage::write_batch waiting;
  waiting.put(storage::column::orgs, storage::keys::org(t), "unconfirmed");
  auto err = f.db->write(waiting);
  REQUIRE(err);
  CHECK(to_api_error(err).status == 503);
  CHECK(to_api_error(err).code == "replication_timeout");

  // Another node owns the shard now (epoch 6): this node's writes of it
  // are refused; other shards' rows it has no role in still go through.
  r->set_roles(roles("n3", "n2", 6));
  storage::write_batch late;
  late.put(storage::column::orgs, storage::keys::org(t), "after-deposed");
  err = f.db->write(late);
  REQUIRE(err);
  CHECK(to_api_error(err).status == 503);
  CHECK(stored_org(*f.db, t) == "unconfirmed");
  storage::set_write_hook(*f.db, nullptr);
  r->stop();
}
