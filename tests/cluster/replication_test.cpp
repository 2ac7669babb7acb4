// Replicated shards (ADR 0008), below the transport: the shard map with
// followers and epochs as etcd stores it, a follower applying a primary's
// batches in order and refusing an older epoch's, and a deposed primary
// refusing its own writes. Real RocksDB in a temporary directory.
// t15-repl. And the asynchronous acknowledgement of an actor's writes
// (t15-ack): answered once the follower holds them, 503 at the timeout or
// when deposed, the actor serving meanwhile on a single scheduler thread.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/acked.hpp"
#include "cluster/replication.hpp"
#include "cluster/shard_roles.hpp"
#include "cluster/shards.hpp"
#include "protocol/errors.hpp"
#include "protocol/type_ids.hpp"
#include "storage/keys.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync;
using namespace crmsync::cluster;
using namespace crmsync::atom;

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

// -- asynchronous acknowledgement (t15-ack)

namespace {

std::unique_ptr<storage::db> open_db(const std::string& path) {
  storage::db_options o;
  o.path = path;
  auto opened = storage::db::open(o);
  REQUIRE(opened);
  return std::move(*opened);
}

/// The follower's endpoint: status and snapshots are answered at once,
/// batches only while the gate is open (held back ones when it opens).
struct gate_state {
  bool open = true;
  std::vector<std::pair<caf::response_promise, repl_push>> held;
};

caf::behavior follower_endpoint(caf::stateful_actor<gate_state>* self,
                                std::shared_ptr<replicator> follower) {
  return {
      [=](replicate_atom, repl_status_ask& ask) {
        return follower->status(ask);
      },
      [=](replicate_atom, repl_snapshot& s) {
        return follower->apply_snapshot("n1", s);
      },
      [=](replicate_atom, repl_push& p) -> caf::result<repl_results> {
        if (self->state.open)
          return follower->apply_push("n1", p);
        auto rp = self->make_response_promise();
        self->state.held.emplace_back(rp, std::move(p));
        return rp;
      },
      [=](const std::string& cmd) {
        self->state.open = cmd == "open";
        if (!self->state.open)
          return;
        for (auto& [rp, p] : self->state.held)
          rp.deliver(follower->apply_push("n1", p));
        self->state.held.clear();
      },
  };
}

/// An actor that writes like a tenant's handler: its answer waits for
/// the write's acknowledgement (actors::acked).
caf::behavior writer(caf::event_based_actor* self, storage::db* db) {
  return {
      [=](tenant_id t, std::string value) -> caf::result<std::string> {
        return actors::acked(self, [&]() -> caf::result<std::string> {
          storage::write_batch b;
          b.put(storage::column::orgs, storage::keys::org(t), value);
          if (auto err = db->write(b))
            return err;
          return "stored " + value;
        });
      },
      [=](const std::string& ping) { return ping + " answered"; },
  };
}

struct two_nodes {
  test::temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<storage::db> primary_db;
  std::unique_ptr<storage::db> follower_db;
  std::shared_ptr<replicator> primary;
  std::shared_ptr<replicator> follower;
  caf::actor endpoint;
  caf::actor writes;

  explicit two_nodes(ack_mode ack = ack_mode::one,
                     std::chrono::milliseconds timeout
                     = std::chrono::seconds(30)) {
    register_types(cfg);
    register_replication_types(cfg);
    mark_actor_threads(cfg);
    // One scheduler thread: a handler that waited for its follower would
    // hold every other actor of the system.
    cfg.set("scheduler.max-threads", 1);
    sys = std::make_unique<caf::actor_system>(cfg);
    primary_db = open_db(dir.path() + "/n1");
    follower_db = open_db(dir.path() + "/n2");
    replication_config rc;
    rc.ack = ack;
    rc.ack_timeout = timeout;
    follower = std::make_shared<replicator>(
        *sys, *follower_db, "n2", shards, rc,
        [](const std::string&) { return caf::actor{}; });
    follower->set_roles(roles("n1", "n2", 5));
    endpoint = sys->spawn(follower_endpoint, follower);
    primary = std::make_shared<replicator>(
        *sys, *primary_db, "n1", shards, rc, [this](const std::string& id) {
          return id == "n2" ? endpoint : caf::actor{};
        });
    storage::set_write_hook(*primary_db, primary);
    primary->set_roles(roles("n1", "n2", 5));
    writes = sys->spawn(writer, primary_db.get());
  }

  ~two_nodes() {
    storage::set_write_hook(*primary_db, nullptr);
    primary->stop();
    follower->stop();
    caf::anon_send_exit(endpoint, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(writes, caf::exit_reason::user_shutdown);
    primary.reset();
    follower.reset();
    sys.reset();
  }

  /// Waits (with a deadline) until the follower holds every shard.
  void wait_followed() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      bool all = true;
      for (uint32_t s = 0; s < shards; ++s) {
        auto h = follower->held(s);
        all = all && h.present && !h.rebuilding && h.epoch == 5;
      }
      if (all)
        return;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void gate(const std::string& cmd) {
    caf::anon_send(endpoint, cmd);
  }

  std::string follower_row(tenant_id t) {
    std::string v;
    bool found = false;
    REQUIRE(!follower_db->get(storage::column::orgs, storage::keys::org(t), v,
                              found));
    return found ? v : "<absent>";
  }
};

/// Sends the write, then a ping behind it: the ping's answer comes while
/// the write still waits (the actor was not held). Answers the write's
/// outcome once it comes.
struct outcome {
  bool answered_before_ping = false;
  std::string value;
  caf::error err;
};

outcome write_and_ping(two_nodes& n, tenant_id t, const std::string& value,
                       const std::function<void()>& meanwhile) {
  outcome out;
  caf::scoped_actor client{*n.sys};
  caf::scoped_actor pinger{*n.sys};
  auto write = client->request(n.writes, std::chrono::seconds(30), t, value);
  std::string pong;
  pinger->request(n.writes, std::chrono::seconds(30), std::string{"ping"})
      .receive([&](std::string& s) { pong = s; },
               [&](caf::error& e) { FAIL(n.sys->render(e)); });
  CHECK(pong == "ping answered");
  // The actor handled the write before the ping: an answer sent without
  // waiting would be in the client's mailbox by now.
  out.answered_before_ping = !client->mailbox().empty();
  meanwhile();
  write.receive([&](std::string& s) { out.value = s; },
                [&](caf::error& e) { out.err = e; });
  return out;
}

} // namespace

TEST_CASE("replication ack: an actor's write is answered once its follower "
          "holds it, and the actor serves meanwhile",
          "[cluster][replication][ack]") {
  two_nodes n;
  n.wait_followed();
  auto t = tenant_in(1);
  n.gate("hold");
  auto got = write_and_ping(n, t, "v1", [&] {
    // Not held by the follower yet: nothing may have been answered.
    CHECK(n.follower_row(t) == "<absent>");
    n.gate("open");
  });
  CHECK_FALSE(got.answered_before_ping);
  REQUIRE(!got.err);
  CHECK(got.value == "stored v1");
  // Answered only once the follower held it.
  CHECK(n.follower_row(t) == "v1");
  CHECK(n.follower->held(1).seq == n.primary->held(1).seq);
}

TEST_CASE("replication ack: no follower confirms in time: 503 "
          "replication_timeout, from a timer, the write stays stored here",
          "[cluster][replication][ack]") {
  two_nodes n{ack_mode::one, std::chrono::milliseconds(300)};
  n.wait_followed();
  auto t = tenant_in(2);
  n.gate("hold");
  auto got = write_and_ping(n, t, "late", [] {});
  CHECK_FALSE(got.answered_before_ping);
  REQUIRE(got.err);
  CHECK(to_api_error(got.err).status == 503);
  CHECK(to_api_error(got.err).code == "replication_timeout");
  std::string v;
  bool found = false;
  REQUIRE(!n.primary_db->get(storage::column::orgs, storage::keys::org(t), v,
                             found));
  CHECK(v == "late");
  n.gate("open");
}

TEST_CASE("replication ack: a primary deposed while a write waits answers "
          "503 node_unavailable, and refuses the next write",
          "[cluster][replication][ack]") {
  two_nodes n;
  n.wait_followed();
  caf::scoped_actor self{*n.sys};
  auto t = tenant_in(3);
  n.gate("hold");
  auto got = write_and_ping(n, t, "v1", [&] {
    // Another node owns every shard now (epoch 6).
    n.primary->set_roles(roles("n3", "n2", 6));
  });
  CHECK_FALSE(got.answered_before_ping);
  REQUIRE(got.err);
  CHECK(to_api_error(got.err).status == 503);
  CHECK(to_api_error(got.err).code == "node_unavailable");
  self->request(n.writes, std::chrono::seconds(30), t, std::string{"v2"})
      .receive([&](std::string& s) { FAIL("answered " + s); },
               [&](caf::error& e) {
                 CHECK(to_api_error(e).status == 503);
                 CHECK(to_api_error(e).code == "node_unavailable");
               });
  n.gate("open");
}

TEST_CASE("replication ack: --replication-ack 0 answers at once, the "
          "follower gets the write afterwards",
          "[cluster][replication][ack]") {
  two_nodes n{ack_mode::none};
  n.wait_followed();
  caf::scoped_actor self{*n.sys};
  auto t = tenant_in(0);
  n.gate("hold");
  std::string answer;
  self->request(n.writes, std::chrono::seconds(30), t, std::string{"v0"})
      .receive([&](std::string& s) { answer = s; },
               [&](caf::error& e) { FAIL(n.sys->render(e)); });
  CHECK(answer == "stored v0");
  CHECK(n.follower_row(t) == "<absent>");
  n.gate("open");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (n.follower_row(t) != "v0") {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// -- page sessions (t15-sessions)

namespace {

constexpr int64_t far_future_ms = int64_t{4102444800000}; // 2100-01-01

std::string session_key(char c) {
  return storage::keys::page_session(std::string(64, c));
}

std::string session_of(tenant_id t) {
  return storage::keys::page_session_value(far_future_ms, t, user_id{7},
                                           R"({"csrf":"x"})");
}

repl_row session_row(const std::string& key, std::string value) {
  return repl_row{static_cast<uint8_t>(storage::column::sessions),
                  value.empty(), key, std::move(value)};
}

std::string stored_session(storage::db& db, const std::string& key) {
  std::string v;
  bool found = false;
  REQUIRE(!db.get(storage::column::sessions, key, v, found));
  return found ? v : std::string{"<absent>"};
}

} // namespace

TEST_CASE("replication: a CRM user's page session is shipped with its "
          "organization's shard, the node-local sessions rows are not",
          "[cluster][replication][sessions]") {
  two_nodes n;
  n.wait_followed();
  auto t = tenant_in(1);
  auto member = session_key('a');
  auto nobody = session_key('b'); // a person who is no CRM user
  storage::write_batch b;
  b.put(storage::column::sessions, member, session_of(t));
  b.put(storage::column::sessions, nobody, session_of(tenant_id{}));
  b.put(storage::column::sessions, storage::keys::signin_state("state"),
        "sign-in state");
  b.put(storage::column::sessions, storage::keys::o365_session("hash"),
        "office 365 session");
  // Written outside the actor system: the write returns once acknowledged.
  REQUIRE(!n.primary_db->write(b));
  CHECK(n.primary->held(1).seq == 1);
  CHECK(n.follower->held(1).seq == 1);
  CHECK(stored_session(*n.follower_db, member) == session_of(t));
  CHECK(stored_session(*n.follower_db, nobody) == "<absent>");
  CHECK(stored_session(*n.follower_db, storage::keys::signin_state("state"))
        == "<absent>");
  CHECK(stored_session(*n.follower_db, storage::keys::o365_session("hash"))
        == "<absent>");
  for (uint32_t s = 0; s < shards; ++s)
    if (s != 1)
      CHECK(n.primary->held(s).seq == 0);

  // Its deletion (a sign-out, the purge, the organization deleted) names
  // the shard by the value the row had, and goes to the follower too.
  storage::write_batch gone;
  gone.del(storage::column::sessions, member);
  REQUIRE(!n.primary_db->write(gone));
  CHECK(n.primary->held(1).seq == 2);
  CHECK(stored_session(*n.follower_db, member) == "<absent>");
}

TEST_CASE("replication: a follower refuses a page session of another shard, "
          "and one that would replace or delete a row under its key that is "
          "not of the shard",
          "[cluster][replication][sessions]") {
  fixture f;
  auto r = f.make("n2");
  r->set_roles(roles("n1", "n2", 3));
  uint32_t shard = 1;
  auto mine = tenant_in(shard);
  auto elsewhere = tenant_in(2);
  repl_snapshot begin{shard, 3, 0, repl_snapshot::begin, {}};
  REQUIRE(r->apply_snapshot("n1", begin).status == repl_result::ok);
  repl_snapshot end{shard, 3, 0, repl_snapshot::end, {}};
  REQUIRE(r->apply_snapshot("n1", end).status == repl_result::ok);
  // This node's own session of someone who is no CRM user, and a session
  // of another shard's organization.
  auto local = session_key('l');
  auto foreign = session_key('f');
  storage::write_batch own;
  own.put(storage::column::sessions, local, session_of(tenant_id{}));
  own.put(storage::column::sessions, foreign, session_of(elsewhere));
  REQUIRE(!f.db->write(own));

  auto push = [&](repl_row row) {
    repl_push p;
    p.entries.push_back(repl_entry{shard, 3, 1, {std::move(row)}});
    auto got = r->apply_push("n1", p);
    REQUIRE(got.items.size() == 1);
    return got.items[0].status;
  };
  auto fresh = session_key('n');
  // A session naming another shard's organization.
  CHECK(push(session_row(fresh, session_of(elsewhere)))
        == repl_result::refused);
  CHECK(stored_session(*f.db, fresh) == "<absent>");
  // A session of the shard over a row that is not: this node's own, or
  // another shard's.
  CHECK(push(session_row(local, session_of(mine))) == repl_result::refused);
  CHECK(stored_session(*f.db, local) == session_of(tenant_id{}));
  CHECK(push(session_row(foreign, session_of(mine))) == repl_result::refused);
  CHECK(stored_session(*f.db, foreign) == session_of(elsewhere));
  // Their deletion.
  CHECK(push(session_row(local, "")) == repl_result::refused);
  CHECK(push(session_row(foreign, "")) == repl_result::refused);
  CHECK(stored_session(*f.db, local) == session_of(tenant_id{}));
  CHECK(stored_session(*f.db, foreign) == session_of(elsewhere));
  CHECK(r->held(shard).seq == 0);
  // The shard's own session, and then its deletion, are taken.
  CHECK(push(session_row(fresh, session_of(mine))) == repl_result::ok);
  CHECK(stored_session(*f.db, fresh) == session_of(mine));
  repl_push del;
  del.entries.push_back(repl_entry{shard, 3, 2, {session_row(fresh, "")}});
  auto got = r->apply_push("n1", del);
  REQUIRE(got.items.size() == 1);
  CHECK(got.items[0].status == repl_result::ok);
  CHECK(stored_session(*f.db, fresh) == "<absent>");
}

TEST_CASE("replication: a follower holding exactly what a new primary began "
          "its epoch from goes on with it, one holding more or less is "
          "rebuilt",
          "[cluster][replication][balance]") {
  fixture f;
  auto r = f.make("n2");
  r->set_roles(roles("n1", "n2", 3));
  uint32_t shard = 2;
  auto t = tenant_in(shard);
  // Held at epoch 3 up to sequence 2.
  repl_snapshot begin{shard, 3, 0, repl_snapshot::begin, {}};
  REQUIRE(r->apply_snapshot("n1", begin).status == repl_result::ok);
  repl_snapshot end{shard, 3, 2, repl_snapshot::end, {org_row(t, "v2")}};
  REQUIRE(r->apply_snapshot("n1", end).status == repl_result::ok);
  CHECK(r->held(shard).seq == 2);

  // A hand-over: n3 owns with epoch 4, begun from (3, 2).
  r->set_roles(roles("n3", "n2", 4));
  auto push = [&](uint64_t seq, int64_t base_epoch, uint64_t base_seq,
                  const std::string& v) {
    repl_push p;
    repl_entry e{shard, 4, seq, {org_row(t, v)}};
    e.base_epoch = base_epoch;
    e.base_seq = base_seq;
    p.entries.push_back(e);
    auto got = r->apply_push("n3", p);
    REQUIRE(got.items.size() == 1);
    return got.items[0];
  };
  // Begun from more than this node holds, or from less, or from another
  // epoch, or with no base at all: a snapshot is needed, nothing written.
  CHECK(push(4, 3, 3, "more").status == repl_result::rebuild);
  CHECK(push(2, 3, 1, "less").status == repl_result::rebuild);
  CHECK(push(3, 2, 2, "other").status == repl_result::rebuild);
  CHECK(push(3, 0, 0, "none").status == repl_result::rebuild);
  CHECK(stored_org(*f.db, t) == "v2");
  // Begun from exactly (3, 2): a later batch is a gap, the next applied.
  auto gap = push(4, 3, 2, "v4");
  CHECK(gap.status == repl_result::gap);
  CHECK(gap.applied == 2);
  auto next = push(3, 3, 2, "v3");
  CHECK(next.status == repl_result::ok);
  CHECK(next.applied == 3);
  CHECK(next.epoch == 4);
  CHECK(stored_org(*f.db, t) == "v3");
  CHECK(r->held(shard).epoch == 4);
  CHECK(r->held(shard).seq == 3);
  // From then on it is of epoch 4 like any follower.
  CHECK(push(4, 3, 2, "v4").status == repl_result::ok);
  CHECK(stored_org(*f.db, t) == "v4");
}
