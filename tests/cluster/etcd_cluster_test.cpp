// The cluster on etcd (ADR 0007), with real processes: a one-member etcd
// started by the test, three crmsyncd nodes that register there, one
// graph-emulator. Membership, the shard map, readiness and the global
// uniqueness claims are checked against what etcd holds.
#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>

#include <unistd.h>

#include <simdjson.h>

#include "cluster/etcd.hpp"
#include "cluster/etcd_claims.hpp"
#include "protocol/errors.hpp"
#include "tests/cluster/cluster_fixture.hpp"
#include "tests/support/etcd_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::e2e;
using crmsync::test::eventually;
namespace etcd = crmsync::cluster::etcd;

namespace {

constexpr std::chrono::milliseconds etcd_wait = std::chrono::seconds(30);

/// The ids registered under /crmsync/members/ in etcd.
std::set<std::string> registered(etcd::client& store) {
  std::set<std::string> out;
  auto got = store.range("/crmsync/members/", true);
  REQUIRE(got);
  for (auto& kv : got->kvs)
    out.insert(kv.key.substr(std::string{"/crmsync/members/"}.size()));
  return out;
}

/// The ids a node's /admin/v1/cluster shows as registered members.
std::set<std::string> members_seen(api_client& node) {
  auto view = node.get(admin_token, "/admin/v1/cluster");
  std::set<std::string> out;
  if (view.status != 200)
    return out;
  for (size_t m = 0; m < view.size("/members"); ++m) {
    auto base = "/members/" + std::to_string(m);
    if (view.boolean(base + "/registered"))
      out.insert(view.str(base + "/id"));
  }
  return out;
}

/// Each shard's owner as a node's /admin/v1/shards places it (the rest of
/// an item is that node's own view: its role, its sequence).
std::string placement(const api_response& shards) {
  std::string out;
  for (size_t s = 0; s < shards.size("/shards"); ++s)
    out += shards.str("/shards/" + std::to_string(s) + "/node") + ","
           + (shards.boolean("/shards/" + std::to_string(s) + "/moved") ? "m"
                                                                        : "")
           + ";";
  return out;
}

/// The owners a shard map names, shard by shard (the map's JSON as etcd
/// holds it).
std::vector<std::string> owners_in(const std::string& map_json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array owners;
  std::vector<std::string> out;
  if (parser.parse(map_json).get(doc) || doc["owners"].get_array().get(owners))
    return out;
  for (auto o : owners) {
    std::string_view id;
    if (o.get_string().get(id))
      return {};
    out.emplace_back(id);
  }
  return out;
}

} // namespace

TEST_CASE("cluster (etcd): members register with leases, the shard map is "
          "versioned in etcd, and the first organizations after ready work",
          "[e2e][cluster][etcd]") {
  crmsync::test::temp_dir dir;
  etcd_process store_proc{dir.path() + "/etcd"};
  etcd::client store{{store_proc.url()}, std::chrono::seconds(5)};
  // Factor 1 (no followers, no failover): a killed node's shards wait for
  // it (replicated shards: replication_cluster_test.cpp).
  cluster_env c({"--etcd-lease-ttl", "2", "--replication-factor", "1"},
                store_proc.url());

  // Readiness tells the truth: what a load balancer sends the moment
  // every node says ready works, on every node.
  std::vector<std::string> orgs;
  for (int i = 0; i < cluster_env::size; ++i) {
    auto r = c.node(i).post(
        admin_token, "/api/v1/orgs",
        org_body("first" + std::to_string(i),
                 "first" + std::to_string(i) + "@example.org"));
    INFO(c.node_id(i) << ": " << r.describe());
    CHECK(r.status == 201);
    if (r.status == 201)
      orgs.push_back(r.str("/org/id"));
  }
  REQUIRE(orgs.size() == 3);

  CHECK(registered(store) == std::set<std::string>{"n1", "n2", "n3"});
  auto map = store.range("/crmsync/shardmap");
  REQUIRE(map);
  REQUIRE(map->kvs.size() == 1);
  auto revision = map->kvs.front().mod_revision;
  CHECK(revision > 0);
  {
    // Factor 1: the map names no follower for any shard.
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    simdjson::dom::array followers;
    REQUIRE(!parser.parse(map->kvs.front().value).get(doc));
    REQUIRE(!doc["followers"].get_array().get(followers));
    CHECK(followers.size() == 256);
    for (auto f : followers)
      CHECK(f.get_array().size() == 0);
  }
  // Each registration hangs on a lease: it ends with its node.
  auto members = store.range("/crmsync/members/", true);
  REQUIRE(members);
  for (auto& kv : members->kvs)
    CHECK(kv.lease != 0);

  std::string first_shards;
  for (int i = 0; i < cluster_env::size; ++i) {
    auto view = c.node(i).get(admin_token, "/admin/v1/cluster");
    E2E_REQUIRE_STATUS(view, 200);
    CHECK(view.str("/membership") == "etcd");
    CHECK(view.boolean("/etcd/registered"));
    CHECK(view.boolean("/etcd/reachable"));
    CHECK(view.i64("/etcd/shard_map_revision") == revision);
    REQUIRE(view.size("/members") == 3);
    uint64_t shards = 0;
    for (size_t m = 0; m < 3; ++m) {
      auto base = "/members/" + std::to_string(m);
      CHECK(view.boolean(base + "/up"));
      shards += view.u64(base + "/shards");
    }
    CHECK(shards == 256);
    // Every node places shards as the map in etcd says.
    auto placed = c.node(i).get(admin_token, "/admin/v1/shards");
    E2E_REQUIRE_STATUS(placed, 200);
    REQUIRE(placed.size("/shards") == 256);
    if (first_shards.empty())
      first_shards = placement(placed);
    CHECK(placement(placed) == first_shards);
    // The cluster view is the service admin's.
    CHECK(c.node(i).get("", "/admin/v1/cluster").status == 401);
  }
  {
    // The stored map names, shard by shard, the owners every node uses.
    auto placed = c.node(0).get(admin_token, "/admin/v1/shards");
    auto owners = owners_in(map->kvs.front().value);
    REQUIRE(owners.size() == 256);
    for (size_t s = 0; s < owners.size(); ++s) {
      INFO("shard " << s);
      CHECK(owners[s] == placed.str("/shards/" + std::to_string(s) + "/node"));
    }
  }

  // A shard move is a new version of the map in etcd, and every node
  // follows it.
  {
    auto placed = c.node(0).get(admin_token, "/admin/v1/tenants/" + orgs[0]);
    E2E_REQUIRE_STATUS(placed, 200);
    auto shard = placed.u64("/shard");
    auto from = placed.str("/node");
    auto to = c.node_id((c.index_of(from) + 1) % cluster_env::size);
    auto moved = c.node(0).post(
        admin_token, "/admin/v1/shards/" + std::to_string(shard) + "/move",
        R"({"to":)" + json_str(to) + "}");
    E2E_REQUIRE_STATUS(moved, 200);
    auto after = store.range("/crmsync/shardmap");
    REQUIRE(after);
    REQUIRE(after->kvs.size() == 1);
    CHECK(after->kvs.front().mod_revision > revision);
    revision = after->kvs.front().mod_revision;
    CHECK(owners_in(after->kvs.front().value).at(shard) == to);
    CHECK(eventually(
        [&] {
          for (int i = 0; i < cluster_env::size; ++i) {
            auto view = c.node(i).get(admin_token, "/admin/v1/cluster");
            if (view.status != 200
                || view.i64("/etcd/shard_map_revision") != revision)
              return false;
          }
          return true;
        },
        etcd_wait));
    for (int i = 0; i < cluster_env::size; ++i) {
      auto where = c.node(i).get(admin_token, "/admin/v1/tenants/" + orgs[0]);
      E2E_REQUIRE_STATUS(where, 200);
      CHECK(where.str("/node") == to);
    }
    first_shards = placement(c.node(0).get(admin_token, "/admin/v1/shards"));
  }

  // A node that dies disappears when its lease ends, from etcd and from
  // the others' views; its organizations answer 503 meanwhile.
  c.kill9(2);
  CHECK(eventually(
      [&] {
        return registered(store) == std::set<std::string>{"n1", "n2"};
      },
      etcd_wait));
  CHECK(eventually(
      [&] {
        return members_seen(c.node(0)) == std::set<std::string>{"n1", "n2"}
               && members_seen(c.node(1)) == std::set<std::string>{"n1", "n2"};
      },
      etcd_wait));
  {
    // It still owns its shards: shown, not registered, not up.
    auto view = c.node(0).get(admin_token, "/admin/v1/cluster");
    REQUIRE(view.size("/members") == 3);
    auto gone = "/members/2";
    CHECK(view.str(std::string{gone} + "/id") == "n3");
    CHECK_FALSE(view.boolean(std::string{gone} + "/registered"));
    CHECK_FALSE(view.boolean(std::string{gone} + "/up"));
    CHECK(view.u64(std::string{gone} + "/shards") > 0);
    // Ready still: what is registered is reached.
    CHECK(c.node(0).get("", "/readyz").status == 200);
  }
  // Back: it registers again and takes its shards from the same map (a
  // restart does not write a new one).
  c.start(2);
  c.wait_ready();
  CHECK(registered(store) == std::set<std::string>{"n1", "n2", "n3"});
  auto again = store.range("/crmsync/shardmap");
  REQUIRE(again);
  REQUIRE(again->kvs.size() == 1);
  CHECK(again->kvs.front().mod_revision == revision);
  for (int i = 0; i < cluster_env::size; ++i) {
    auto placed = c.node(i).get(admin_token, "/admin/v1/shards");
    CHECK(placement(placed) == first_shards);
  }
  for (int i = 0; i < cluster_env::size; ++i) {
    auto r = c.node(i).post(
        admin_token, "/api/v1/orgs",
        org_body("after" + std::to_string(i),
                 "after" + std::to_string(i) + "@example.org"));
    INFO(c.node_id(i) << ": " << r.describe());
    CHECK(r.status == 201);
  }

  // A registration without a certificate of the cluster CA (written
  // straight into etcd) is dialled but never becomes a connected member:
  // the nodes say so and are not ready while it stays registered (a
  // forward or a global read could not reach it) — etcd is trusted, which
  // is why its port is the cluster's own (docs/SECURITY.md).
  closed_port nowhere;
  REQUIRE_FALSE(store.put("/crmsync/members/n9",
                          R"({"id":"n9","cluster_address":"127.0.0.1:)"
                              + std::to_string(nowhere.port())
                              + R"(","http_url":"http://127.0.0.1:1"})"));
  CHECK(eventually(
      [&] {
        auto view = c.node(0).get(admin_token, "/admin/v1/cluster");
        for (size_t m = 0; m < view.size("/members"); ++m) {
          auto base = "/members/" + std::to_string(m);
          if (view.str(base + "/id") == "n9")
            return view.boolean(base + "/registered")
                   && !view.boolean(base + "/up");
        }
        return false;
      },
      etcd_wait));
  CHECK(c.node(0).get("", "/readyz").status == 503);
  REQUIRE(store.txn({}, {etcd::operation::del("/crmsync/members/n9")}));
  CHECK(eventually(
      [&] {
        for (int i = 0; i < cluster_env::size; ++i)
          if (c.node(i).get("", "/readyz").status != 200)
            return false;
        return true;
      },
      etcd_wait));
}

TEST_CASE("cluster (etcd): every node places every shard as one version of "
          "the map in etcd does, also while shards move",
          "[e2e][cluster][etcd][moves]") {
  // Issue 15: with etcd the map there is the only thing that names
  // owners. A move used to set the new owner on each node from the
  // mover's message, before the node had read the map that made it: for
  // up to a poll a node placed the shard where no version of the map
  // with its revision did (and a message a newer map had overtaken could
  // place it wrongly for good). Now the message only makes a node read
  // the map, and the mover takes the version it wrote.
  crmsync::test::temp_dir dir;
  etcd_process store_proc{dir.path() + "/etcd"};
  cluster_env c({}, store_proc.url());
  auto made = c.call_retrying("POST", "/api/v1/orgs", admin_token,
                              org_body("mover", "mover@example.org"));
  E2E_REQUIRE_STATUS(made, 201);
  auto placed = c.call_retrying(
      "GET", "/admin/v1/tenants/" + made.str("/org/id"), admin_token);
  E2E_REQUIRE_STATUS(placed, 200);
  const auto shard = placed.u64("/shard");
  auto at = c.index_of(placed.str("/node"));

  // Every version of the map etcd held while the test looked (a version
  // that lived less than a poll of it may be missed: samples at such a
  // revision are not judged).
  std::mutex seen_mtx;
  std::map<int64_t, std::vector<std::string>> versions;
  struct sample {
    int node;
    int64_t revision;
    std::vector<std::string> owners;
  };
  std::vector<sample> samples;
  std::atomic<bool> stop{false};
  crmsync::test::thread_guard lookers{[&] {
    stop = true;
  }};
  lookers.spawn([&, url = store_proc.url()] {
    etcd::client store{{url}, std::chrono::seconds(5)};
    while (!stop) {
      auto m = store.range("/crmsync/shardmap");
      if (m && m->kvs.size() == 1) {
        std::lock_guard<std::mutex> guard{seen_mtx};
        auto rev = m->kvs.front().mod_revision;
        if (versions.count(rev) == 0)
          versions[rev] = owners_in(m->kvs.front().value);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  for (int i = 0; i < cluster_env::size; ++i)
    lookers.spawn([&, i, port = c.http_port(i)] {
      api_client node{port};
      auto revision = [&] {
        auto view = node.get(admin_token, "/admin/v1/cluster");
        return view.status == 200 ? view.i64("/etcd/shard_map_revision")
                                  : int64_t{-1};
      };
      while (!stop) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        // Two reads of the revision around the placement: when they agree,
        // the placement is the one this node held at that revision.
        auto before = revision();
        auto shards = node.get(admin_token, "/admin/v1/shards");
        if (shards.status != 200 || before < 0 || revision() != before)
          continue;
        sample x{i, before, {}};
        for (size_t s = 0; s < shards.size("/shards"); ++s)
          x.owners.push_back(
              shards.str("/shards/" + std::to_string(s) + "/node"));
        std::lock_guard<std::mutex> guard{seen_mtx};
        samples.push_back(std::move(x));
      }
    });

  // The shard goes round the three nodes twice.
  int64_t first_move = 0;
  for (int round = 0; round < 2 * cluster_env::size; ++round) {
    at = (at + 1) % cluster_env::size;
    auto moved = c.call_retrying(
        "POST", "/admin/v1/shards/" + std::to_string(shard) + "/move",
        admin_token, R"({"to":)" + json_str(c.node_id(at)) + "}");
    E2E_REQUIRE_STATUS(moved, 200);
    etcd::client store{{store_proc.url()}, std::chrono::seconds(5)};
    auto now = store.range("/crmsync/shardmap");
    REQUIRE(now);
    REQUIRE(now->kvs.size() == 1);
    auto revision = now->kvs.front().mod_revision;
    if (first_move == 0)
      first_move = revision;
    CHECK(owners_in(now->kvs.front().value).at(shard) == c.node_id(at));
    // Every node follows (and the lookers see the moves through).
    CHECK(eventually(
        [&] {
          for (int i = 0; i < cluster_env::size; ++i) {
            auto view = c.node(i).get(admin_token, "/admin/v1/cluster");
            if (view.status != 200
                || view.i64("/etcd/shard_map_revision") < revision)
              return false;
          }
          return true;
        },
        etcd_wait));
  }
  lookers.join();

  size_t judged = 0, during = 0, wrong = 0;
  for (auto& x : samples) {
    auto v = versions.find(x.revision);
    if (v == versions.end())
      continue;
    ++judged;
    during += x.revision >= first_move;
    if (x.owners == v->second)
      continue;
    ++wrong;
    for (size_t s = 0; s < x.owners.size() && s < v->second.size(); ++s)
      if (x.owners[s] != v->second[s]) {
        UNSCOPED_INFO(c.node_id(x.node)
                      << " at map revision " << x.revision << " placed shard "
                      << s << " on " << x.owners[s] << ", that version on "
                      << v->second[s]);
        break;
      }
  }
  INFO(judged << " placements judged, " << during
              << " of them at or after the first move's revision");
  CHECK(wrong == 0);
  CHECK(during >= 12); // two per move at least
}

TEST_CASE("cluster (etcd): the same e-mail created on three nodes at once: "
          "exactly one wins, the others get 409 email_taken",
          "[e2e][cluster][etcd]") {
  crmsync::test::temp_dir dir;
  etcd_process store_proc{dir.path() + "/etcd"};
  etcd::client store{{store_proc.url()}, std::chrono::seconds(5)};
  cluster_env c({}, store_proc.url());

  constexpr int rounds = 6;
  constexpr int racers = 9; // three per node
  std::string winner_org;
  for (int round = 0; round < rounds; ++round) {
    auto email = "race" + std::to_string(round) + "@example.org";
    std::atomic<int> go{0};
    std::vector<api_response> answers(racers);
    std::vector<std::thread> threads;
    for (int k = 0; k < racers; ++k) {
      uint16_t port = c.http_port(k % cluster_env::size);
      threads.emplace_back([&, k, port] {
        api_client client{port};
        go.fetch_add(1);
        // Every racer waits for the others, so they send together.
        while (go.load() < racers)
          std::this_thread::yield();
        answers[k] = client.post(
            admin_token, "/api/v1/orgs",
            org_body("race" + std::to_string(round) + "-" + std::to_string(k),
                     email));
      });
    }
    for (auto& t : threads)
      t.join();
    int won = 0;
    for (auto& a : answers) {
      INFO(email << ": " << a.describe());
      if (a.status == 201) {
        ++won;
        winner_org = a.str("/org/id");
      } else {
        CHECK(a.status == 409);
        CHECK(a.error_code() == "email_taken");
        CHECK(a.error_field() == "admin.email");
      }
    }
    CHECK(won == 1);
    // The claim is in etcd, held by the winner.
    auto claim = store.range("/crmsync/claims/e" + email);
    REQUIRE(claim);
    CHECK(claim->kvs.size() == 1);
  }

  // Deleting the organization gives its address back, cluster-wide.
  auto email = "race" + std::to_string(rounds - 1) + "@example.org";
  auto del = c.call_retrying(
      "DELETE", "/admin/v1/orgs/" + winner_org + "?confirm=" + winner_org,
      admin_token);
  INFO(del.describe());
  CHECK(del.status / 100 == 2);
  CHECK(eventually(
      [&] {
        auto claim = store.range("/crmsync/claims/e" + email);
        return claim && claim->kvs.empty();
      },
      etcd_wait));
  for (int i = 0; i < cluster_env::size; ++i) {
    auto r
        = c.node(i).post(admin_token, "/api/v1/orgs",
                         org_body("reborn", i == 0 ? email
                                                   : "other" + std::to_string(i)
                                                         + "@example.org"));
    INFO(r.describe());
    CHECK(r.status == 201);
  }
}

TEST_CASE("cluster (etcd): without etcd a creation is 503 "
          "coordination_unavailable and the nodes are not ready",
          "[e2e][cluster][etcd]") {
  crmsync::test::temp_dir dir;
  etcd_process store_proc{dir.path() + "/etcd"};
  cluster_env c({}, store_proc.url());
  store_proc.stop();
  for (int i = 0; i < cluster_env::size; ++i) {
    auto r = c.node(i).post(
        admin_token, "/api/v1/orgs",
        org_body("lonely" + std::to_string(i),
                 "lonely" + std::to_string(i) + "@example.org"));
    INFO(c.node_id(i) << ": " << r.describe());
    CHECK(r.status == 503);
    CHECK(r.error_code() == "coordination_unavailable");
  }
  CHECK(eventually(
      [&] {
        for (int i = 0; i < cluster_env::size; ++i)
          if (c.node(i).get("", "/readyz").status != 503)
            return false;
        return true;
      },
      etcd_wait));
}

TEST_CASE("etcd claims: one transaction for all of a write's claims, taken "
          "once, re-taken by their holder, released only by it",
          "[e2e][cluster][etcd]") {
  crmsync::test::temp_dir dir;
  etcd_process store_proc{dir.path() + "/etcd"};
  auto store = std::make_shared<etcd::client>(
      std::vector<std::string>{store_proc.url()}, std::chrono::seconds(5));
  crmsync::cluster::etcd_claims claims{store, "/crmsync/"};
  using crmsync::storage::claim;
  using crmsync::storage::column;
  claim a_mail{column::lookup, "ea@example.org", "owner-a"};
  claim a_user{column::lookup, std::string("u\0\1", 3), "org-a"};
  claim b_mail{column::lookup, "ea@example.org", "owner-b"};
  claim b_user{column::lookup, "u\2", "org-b"};

  std::vector<claim> made;
  REQUIRE(!claims.take({a_mail, a_user}, made));
  CHECK(made.size() == 2);
  // Another owner of the same address: refused, naming the key, and none
  // of its other claims stays behind.
  auto refused = claims.take({b_user, b_mail}, made);
  REQUIRE(refused);
  auto e = crmsync::to_api_error(refused);
  CHECK(e.status == 409);
  CHECK(e.message == "ea@example.org");
  auto left = store->range("/crmsync/claims/u\2");
  REQUIRE(left);
  CHECK(left->kvs.empty());
  // The holder again (a user saved with the same address): nothing new.
  REQUIRE(!claims.take({a_mail}, made));
  CHECK(made.empty());
  // Only the holder's value releases.
  claims.release({b_mail});
  auto still = store->range("/crmsync/claims/ea@example.org");
  REQUIRE(still);
  CHECK(still->kvs.size() == 1);
  claims.release({a_mail});
  REQUIRE(!claims.take({b_mail}, made));
  CHECK(made.size() == 1);
  // Binary keys survive the gateway's base64.
  auto bin = store->range(std::string("/crmsync/claims/u\0\1", 19));
  REQUIRE(bin);
  REQUIRE(bin->kvs.size() == 1);
  CHECK(bin->kvs.front().value == "org-a");
}

TEST_CASE("cluster (etcd): a store that cannot be reached makes claims 503, "
          "never a guess",
          "[e2e][cluster][etcd]") {
  crmsync::test::temp_dir dir;
  closed_port nothing;
  auto store = std::make_shared<etcd::client>(
      std::vector<std::string>{"http://127.0.0.1:"
                               + std::to_string(nothing.port())},
      std::chrono::seconds(2));
  crmsync::cluster::etcd_claims claims{store, "/crmsync/"};
  std::vector<crmsync::storage::claim> made;
  auto err = claims.take(
      {{crmsync::storage::column::lookup, "ex@example.org", "v"}}, made);
  REQUIRE(err);
  auto e = crmsync::to_api_error(err);
  CHECK(e.status == 503);
  CHECK(e.code == "coordination_unavailable");
}

TEST_CASE("cluster (etcd): crmsyncd refuses etcd settings that cannot work",
          "[e2e][cluster][etcd]") {
  crmsync::test::temp_dir dir;
  std::vector<std::string> ids{"n1"};
  make_cluster_certs(dir.path() + "/certs", ids);
  auto tls = " --cluster-ca-file " + dir.path() + "/certs/ca.pem"
             + " --cluster-cert " + dir.path() + "/certs/n1.pem"
             + " --cluster-key " + dir.path() + "/certs/n1.key";
  struct bad_case {
    std::string args;
    std::string says;
  };
  std::vector<bad_case> cases{
      {"--etcd-endpoints http://127.0.0.1:2379 --peers n2=127.0.0.1:7002 "
       "--cluster-listen 127.0.0.1:7001"
           + tls,
       "exclude each other"},
      {"--etcd-endpoints http://127.0.0.1:2379" + tls,
       "--etcd-endpoints needs --cluster-listen"},
      {"--etcd-endpoints http://127.0.0.1:2379 --cluster-listen 0.0.0.0:0"
           + tls,
       "can reach"},
      {"--etcd-endpoints https://127.0.0.1:2379 --cluster-listen 127.0.0.1:0"
           + tls,
       "--etcd-ca-file must name the CA"},
      {"--etcd-endpoints 127.0.0.1 --cluster-listen 127.0.0.1:0" + tls,
       "not http[s]://HOST:PORT"},
      // etcd does not replace the cluster's certificates: without them no
      // node joins, whatever etcd says.
      {"--etcd-endpoints http://127.0.0.1:2379 --cluster-listen 127.0.0.1:0",
       "--cluster-ca-file"},
      {"--etcd-endpoints http://127.0.0.1:2379 --cluster-listen 127.0.0.1:0 "
       "--initial-members 0"
           + tls,
       "--initial-members"},
  };
  for (auto& bad : cases) {
    auto cmd = std::string{CRMSYNCD_PATH} + " --data-dir " + dir.path()
               + "/never-" + std::to_string(::getpid()) + " " + bad.args
               + " 2>&1";
    int code = -1;
    auto out = run_command(cmd, code);
    INFO(bad.args << " -> " << out);
    CHECK(code == 2);
    CHECK(out.find(bad.says) != std::string::npos);
  }
}
