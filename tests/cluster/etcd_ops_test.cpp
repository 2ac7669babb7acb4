// The operational side of the cluster on etcd (t15-ops, issue 15): TLS and
// client certificates to etcd, etcd's user/role authentication with a
// password rotated under a running node, the sweep of uniqueness claims
// whose row never came, and drains and bounded rebalancing when a member
// joins. Real processes: etcd (Debian's etcd-server), crmsyncd nodes,
// graph-emulator, crmsyncctl.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>

#include <simdjson.h>

#include "cluster/etcd.hpp"
#include "cluster/shards.hpp"
#include "http/client.hpp"
#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "tests/cluster/cluster_fixture.hpp"
#include "tests/support/ctl_runner.hpp"
#include "tests/support/etcd_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync::e2e;
using crmsync::test::eventually;
namespace etcd = crmsync::cluster::etcd;
namespace http = crmsync::http;

namespace {

constexpr std::chrono::milliseconds etcd_wait = std::chrono::seconds(40);

void write_file(const std::string& path, const std::string& text,
                mode_t mode = 0600) {
  {
    std::ofstream out{path, std::ios::trunc};
    out << text;
  }
  ::chmod(path.c_str(), mode);
}

/// The command line of a lone member `id` of a cluster on etcd (its own
/// cluster certificate under `certs`), plus `more`.
std::vector<std::string> lone_member(const std::string& certs,
                                     const std::string& id,
                                     const std::string& etcd_url,
                                     std::vector<std::string> more) {
  make_cluster_certs(certs, {id});
  std::vector<std::string> args{"--node-id",         id,
                                "--cluster-listen",  "127.0.0.1:0",
                                "--etcd-endpoints",  etcd_url,
                                "--initial-members", "1",
                                "--cluster-ca-file", certs + "/ca.pem",
                                "--cluster-cert",    certs + "/" + id + ".pem",
                                "--cluster-key",     certs + "/" + id + ".key",
                                "--log-level",       "info"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

node_process& start_lone(node_process& p, const std::string& dir,
                         const std::string& id, std::vector<std::string> args) {
  node_options o;
  o.data_dir = dir + "/" + id;
  o.admin_token = admin_token;
  o.log_file = dir + "/" + id + ".log";
  o.extra_args = std::move(args);
  p.start(o);
  return p;
}

bool ready(uint16_t port) {
  api_client c{port, std::chrono::seconds(5)};
  api_response r;
  std::string err;
  return c.try_request("GET", "/readyz", "", {}, r, err) && r.status == 200;
}

/// One POST to etcd's gateway (TLS with `tls`), with a token when given.
http::client_response gateway(uint16_t port, const http::tls_options& tls,
                              const std::string& path, const std::string& body,
                              const std::string& token = {}) {
  http::client c{"127.0.0.1", port, std::chrono::seconds(5), tls};
  http::header_list h{{"Content-Type", "application/json"}};
  if (!token.empty())
    h.emplace_back("Authorization", token);
  http::client_response res;
  std::string err;
  INFO(path << ": " << err);
  REQUIRE(c.request("POST", path, body, h, res, err));
  INFO(path << " -> " << res.status << " " << res.body);
  REQUIRE(res.status == 200);
  return res;
}

std::string token_of(const http::client_response& res) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  std::string_view t;
  REQUIRE(!p.parse(res.body).get(doc));
  REQUIRE(!doc["token"].get_string().get(t));
  return std::string{t};
}

/// The owner of every shard in the map etcd holds.
std::vector<std::string> stored_owners(etcd::client& store) {
  std::vector<std::string> out;
  auto m = store.range("/crmsync/shardmap");
  if (!m || m->kvs.empty())
    return out;
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  simdjson::dom::array owners;
  if (p.parse(m->kvs.front().value).get(doc)
      || doc["owners"].get_array().get(owners))
    return out;
  for (auto o : owners) {
    std::string_view id;
    if (!o.get_string().get(id))
      out.emplace_back(id);
  }
  return out;
}

/// Rendezvous over `members`, shard by shard: where a cluster of them
/// puts each of `count` shards.
std::vector<std::string> rendezvous(const std::vector<std::string>& members,
                                    uint32_t count) {
  std::vector<std::string> out;
  for (uint32_t s = 0; s < count; ++s)
    out.push_back(crmsync::cluster::rendezvous_owner(s, members));
  return out;
}

/// The 8 bytes an organization id stands for (keys::org).
std::string org_key(const std::string& id) {
  auto v = crmsync::parse_hex16(id);
  REQUIRE(v);
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8)
    out += static_cast<char>((*v >> shift) & 0xff);
  return out;
}

} // namespace

TEST_CASE("cluster (etcd ops): etcd over TLS with client certificates, a "
          "node without the right certificate is refused",
          "[e2e][cluster][etcd][etcd-ops]") {
  crmsync::test::temp_dir dir;
  auto pki = dir.path() + "/pki";
  make_etcd_certs(pki);
  etcd_tls tls{pki + "/ca.pem", pki + "/server.pem", pki + "/server.key",
               pki + "/ca.pem", pki + "/client.pem", pki + "/client.key"};
  etcd_process store_proc{dir.path() + "/etcd", tls};
  REQUIRE(store_proc.url().rfind("https://", 0) == 0);

  // The client: etcd's CA only, and the certificate etcd asks for.
  etcd::client store{
      {store_proc.url()},
      std::chrono::seconds(5),
      {pki + "/ca.pem", pki + "/client.pem", pki + "/client.key", "", ""}};
  REQUIRE_FALSE(store.put("/probe", "1"));
  // No certificate, one of another CA, or etcd's CA not trusted: refused.
  for (auto sec : std::vector<etcd::security>{
           {pki + "/ca.pem", "", "", "", ""},
           {pki + "/ca.pem", pki + "/rogue.pem", pki + "/rogue.key", "", ""},
           {pki + "/rogue-ca.pem", pki + "/client.pem", pki + "/client.key", "",
            ""}}) {
    etcd::client bad{{store_proc.url()}, std::chrono::seconds(3), sec};
    auto got = bad.range("/probe");
    INFO("ca " << sec.ca_file << " cert " << sec.cert_file);
    REQUIRE_FALSE(got);
    CHECK(crmsync::to_api_error(got.error()).code
          == "coordination_unavailable");
  }

  // Three nodes with the client certificate: ready, and creations claim
  // their addresses in etcd over TLS.
  std::vector<std::string> flags{"--etcd-ca-file",   pki + "/ca.pem",
                                 "--etcd-cert-file", pki + "/client.pem",
                                 "--etcd-key-file",  pki + "/client.key"};
  cluster_env c(flags, store_proc.url());
  for (int i = 0; i < cluster_env::size; ++i) {
    auto r = c.node(i).post(admin_token, "/api/v1/orgs",
                            org_body("tls" + std::to_string(i),
                                     "tls" + std::to_string(i) + "@ex.org"));
    INFO(r.describe());
    CHECK(r.status == 201);
    auto claim
        = store.range("/crmsync/claims/etls" + std::to_string(i) + "@ex.org");
    REQUIRE(claim);
    CHECK(claim->kvs.size() == 1);
  }
  auto view = c.node(0).get(admin_token, "/admin/v1/cluster");
  CHECK(view.boolean("/etcd/reachable"));

  // A node with a certificate of another CA never registers: it says why
  // and is not ready.
  node_process rogue;
  start_lone(
      rogue, dir.path(), "r1",
      lone_member(dir.path() + "/certs-r", "r1", store_proc.url(),
                  {"--etcd-ca-file", pki + "/ca.pem", "--etcd-cert-file",
                   pki + "/rogue.pem", "--etcd-key-file", pki + "/rogue.key"}));
  CHECK(eventually(
      [&] {
        return rogue.log().find("cannot register in etcd") != std::string::npos;
      },
      etcd_wait));
  CHECK_FALSE(ready(rogue.port()));
  auto members = store.range("/crmsync/members/", true);
  REQUIRE(members);
  CHECK(members->kvs.size() == 3);
}

TEST_CASE("cluster (etcd ops): etcd's user/role authentication: the right "
          "password works, a wrong one is refused, a rotated one is taken",
          "[e2e][cluster][etcd][etcd-ops]") {
  crmsync::test::temp_dir dir;
  auto pki = dir.path() + "/pki";
  make_etcd_certs(pki);
  // TLS without client certificates: the password is what proves the
  // node (it never crosses the wire in clear: crmsyncd refuses http).
  etcd_tls tls{
      pki + "/ca.pem", pki + "/server.pem", pki + "/server.key", "", "", ""};
  etcd_process store_proc{dir.path() + "/etcd", tls};
  http::tls_options to_etcd;
  to_etcd.enabled = true;
  to_etcd.system_store = false;
  to_etcd.extra_ca_file = pki + "/ca.pem";
  auto port = store_proc.client_port();
  // The operator's set-up through the gateway: root, a role that may
  // touch /crmsync/ only, its user, then auth on.
  gateway(port, to_etcd, "/v3/auth/user/add",
          R"({"name":"root","password":"root-pw"})");
  gateway(port, to_etcd, "/v3/auth/user/grant",
          R"({"user":"root","role":"root"})");
  gateway(port, to_etcd, "/v3/auth/role/add", R"({"name":"crmsync"})");
  gateway(port, to_etcd, "/v3/auth/role/grant",
          R"({"name":"crmsync","perm":{"permType":"READWRITE","key":")"
              + etcd::base64("/crmsync/") + R"(","range_end":")"
              + etcd::base64(etcd::prefix_end("/crmsync/")) + R"("}})");
  gateway(port, to_etcd, "/v3/auth/user/add",
          R"({"name":"crmsync","password":"first-pw"})");
  gateway(port, to_etcd, "/v3/auth/user/grant",
          R"({"user":"crmsync","role":"crmsync"})");
  gateway(port, to_etcd, "/v3/auth/enable", "{}");

  auto good_pw = dir.path() + "/good.pw";
  auto bad_pw = dir.path() + "/bad.pw";
  write_file(good_pw, "first-pw\n");
  write_file(bad_pw, "not-the-pw\n");
  auto with = [&](const std::string& pw_file) {
    return std::vector<std::string>{"--etcd-ca-file",       pki + "/ca.pem",
                                    "--etcd-user",          "crmsync",
                                    "--etcd-password-file", pw_file};
  };
  node_process good;
  start_lone(good, dir.path(), "a1",
             lone_member(dir.path() + "/certs", "a1", store_proc.url(),
                         with(good_pw)));
  REQUIRE(eventually([&] { return ready(good.port()); }, etcd_wait));
  api_client node{good.port()};
  auto r = node.post(admin_token, "/api/v1/orgs",
                     org_body("authed", "authed@ex.org"));
  INFO(r.describe());
  CHECK(r.status == 201);

  // The wrong password: etcd refuses, the node says so and is not ready.
  node_process bad;
  start_lone(
      bad, dir.path(), "a2",
      lone_member(dir.path() + "/certs", "a2", store_proc.url(), with(bad_pw)));
  CHECK(eventually(
      [&] {
        return bad.log().find("etcd refused to authenticate user 'crmsync'")
               != std::string::npos;
      },
      etcd_wait));
  CHECK_FALSE(ready(bad.port()));
  api_client refused{bad.port()};
  auto r2 = refused.post(admin_token, "/api/v1/orgs",
                         org_body("unauthed", "unauthed@ex.org"));
  CHECK(r2.status == 503);

  // The password rotated: etcd drops the node's token; the node
  // authenticates again with what the file says now.
  auto root = token_of(gateway(port, to_etcd, "/v3/auth/authenticate",
                               R"({"name":"root","password":"root-pw"})"));
  write_file(good_pw, "second-pw\n");
  gateway(port, to_etcd, "/v3/auth/user/changepw",
          R"({"name":"crmsync","password":"second-pw"})", root);
  auto r3 = node.post(admin_token, "/api/v1/orgs",
                      org_body("rotated", "rotated@ex.org"));
  INFO(r3.describe() << "\n" << good.log_tail());
  CHECK(r3.status == 201);
  CHECK(ready(good.port()));
}

TEST_CASE("crmsyncd refuses etcd TLS and authentication settings that "
          "cannot work",
          "[e2e][cluster][etcd][etcd-ops]") {
  crmsync::test::temp_dir dir;
  auto pki = dir.path() + "/pki";
  make_etcd_certs(pki);
  make_cluster_certs(dir.path() + "/certs", {"n1"});
  auto cluster = " --cluster-listen 127.0.0.1:0 --cluster-ca-file " + dir.path()
                 + "/certs/ca.pem --cluster-cert " + dir.path()
                 + "/certs/n1.pem --cluster-key " + dir.path()
                 + "/certs/n1.key";
  auto pw = dir.path() + "/etcd.pw";
  auto open_pw = dir.path() + "/open.pw";
  auto empty_pw = dir.path() + "/empty.pw";
  auto open_key = dir.path() + "/open.key";
  write_file(pw, "secret\n");
  write_file(open_pw, "secret\n", 0644);
  write_file(empty_pw, "", 0600);
  write_file(open_key, slurp(pki + "/client.key"), 0644);
  std::string https = " --etcd-endpoints https://127.0.0.1:2379";
  auto ca = " --etcd-ca-file " + pki + "/ca.pem";
  auto client = " --etcd-cert-file " + pki + "/client.pem --etcd-key-file "
                + pki + "/client.key";
  struct bad_case {
    std::string args;
    std::string says;
  };
  std::vector<bad_case> cases{
      {https + cluster, "--etcd-ca-file must name the CA"},
      {" --etcd-endpoints http://127.0.0.1:2379" + ca + cluster,
       "are for https:// endpoints"},
      {" --etcd-endpoints http://127.0.0.1:2379,https://127.0.0.1:2380"
           + cluster,
       "mixes http:// and https://"},
      {https + " --etcd-ca-file " + dir.path() + "/missing.pem" + cluster,
       "--etcd-ca-file: cannot read"},
      {https + " --etcd-ca-file " + pw + cluster, "holds no PEM certificate"},
      {https + ca + " --etcd-cert-file " + pki + "/client.pem" + cluster,
       "--etcd-cert-file and --etcd-key-file go together"},
      {https + ca + " --etcd-cert-file " + pki + "/client.pem --etcd-key-file "
           + pki + "/rogue.key" + cluster,
       "is not the key of the certificate"},
      {https + ca + " --etcd-cert-file " + pki + "/client.pem --etcd-key-file "
           + open_key + cluster,
       "may be read or written by other users"},
      {https + ca + " --etcd-user crmsync" + cluster,
       "--etcd-user and --etcd-password-file go together"},
      {https + ca + " --etcd-user crmsync --etcd-password-file " + dir.path()
           + "/none.pw" + cluster,
       "--etcd-password-file: cannot read"},
      {https + ca + " --etcd-user crmsync --etcd-password-file " + open_pw
           + cluster,
       "may be read or written by other users"},
      {https + ca + " --etcd-user crmsync --etcd-password-file " + empty_pw
           + cluster,
       "holds no password"},
      {" --etcd-endpoints http://127.0.0.1:2379 --etcd-user crmsync "
       "--etcd-password-file "
           + pw + cluster,
       "would cross the network in clear"},
      {https + ca + client + " --etcd-user crmsync --etcd-password-file " + pw
           + cluster,
       "--etcd-user and --etcd-cert-file exclude each other"},
      {ca + client, "are for --etcd-endpoints"},
  };
  for (auto& bad : cases) {
    // A start that is not refused would serve: `timeout` ends it (124).
    auto cmd = "timeout 20 " + std::string{CRMSYNCD_PATH} + " --data-dir "
               + dir.path() + "/never-" + std::to_string(::getpid()) + bad.args
               + " 2>&1";
    int code = -1;
    auto out = run_command(cmd, code);
    INFO(bad.args << " -> " << out);
    CHECK(code == 2);
    CHECK(out.find(bad.says) != std::string::npos);
  }
  // The same settings from the environment.
  auto cmd = "CRMSYNC_ETCD_ENDPOINTS=https://127.0.0.1:2379 "
             "CRMSYNC_ETCD_USER=crmsync "
             + std::string{CRMSYNCD_PATH} + " --data-dir " + dir.path()
             + "/never" + cluster + " 2>&1";
  int code = -1;
  auto out = run_command(cmd, code);
  INFO(out);
  CHECK(code == 2);
  CHECK(out.find("--etcd-ca-file must name the CA") != std::string::npos);
}

TEST_CASE("cluster (etcd ops): a uniqueness claim whose row never came is "
          "released by its owner after the grace period, live claims stay",
          "[e2e][cluster][etcd][etcd-ops]") {
  crmsync::test::temp_dir dir;
  etcd_process store_proc{dir.path() + "/etcd"};
  etcd::client store{{store_proc.url()}, std::chrono::seconds(5)};
  cluster_env c({"--claim-grace", "2"}, store_proc.url());

  auto made = c.node(0).post(admin_token, "/api/v1/orgs",
                             org_body("Live", "live@ex.org"));
  E2E_REQUIRE_STATUS(made, 201);
  auto org = made.str("/org/id");
  // A node that died between its claim and its write: the claim names
  // this organization and a user that was never written.
  std::string ghost = "/crmsync/claims/eghost@ex.org";
  REQUIRE_FALSE(store.put(ghost, org_key(org) + std::string(8, '\x7f')));
  auto owner = c.index_of(c.owner_of(org));
  auto before = metric(c.node(owner), "crmsync_cluster_claims_released_total");

  CHECK(eventually(
      [&] {
        auto got = store.range(ghost);
        return got && got->kvs.empty();
      },
      etcd_wait, std::chrono::milliseconds(200)));
  // The owner released it, said so and counted it.
  CHECK(metric(c.node(owner), "crmsync_cluster_claims_released_total")
        == before + 1);
  CHECK(c.full_log(owner).find("released the uniqueness claim 'eghost@ex.org'")
        != std::string::npos);
  // The organization's own claims have their rows: they stay.
  for (auto key : {std::string{"/crmsync/claims/elive@ex.org"}}) {
    auto got = store.range(key);
    REQUIRE(got);
    CHECK(got->kvs.size() == 1);
  }
  auto again = c.node(1).post(admin_token, "/api/v1/orgs",
                              org_body("Live again", "live@ex.org"));
  CHECK(again.status == 409);
  // The address is free again.
  auto reborn = c.node(2).post(admin_token, "/api/v1/orgs",
                               org_body("Ghost", "ghost@ex.org"));
  INFO(reborn.describe());
  CHECK(reborn.status == 201);
}

TEST_CASE("cluster (etcd ops): a fourth node receives its rendezvous share "
          "at a bounded rate, a drained node gives every shard away",
          "[e2e][cluster][etcd][etcd-ops]") {
  crmsync::test::temp_dir dir;
  etcd_process store_proc{dir.path() + "/etcd"};
  etcd::client store{{store_proc.url()}, std::chrono::seconds(5)};
  constexpr uint32_t shards = 12;
  cluster_env c({"--shards", std::to_string(shards), "--rebalance-rate", "120"},
                store_proc.url());
  std::vector<std::string> three{"n1", "n2", "n3"};
  REQUIRE(stored_owners(store) == rendezvous(three, shards));

  // Organizations on every node, with a user each.
  std::vector<std::pair<std::string, std::string>> orgs; // id, admin token
  for (int i = 0; i < 9; ++i) {
    auto r
        = c.node(i % 3).post(admin_token, "/api/v1/orgs",
                             org_body("grow" + std::to_string(i),
                                      "grow" + std::to_string(i) + "@ex.org"));
    E2E_REQUIRE_STATUS(r, 201);
    orgs.emplace_back(r.str("/org/id"), r.str("/admin/token"));
  }
  auto all_readable = [&] {
    for (auto& [id, token] : orgs) {
      auto r = c.call_retrying("GET", "/api/v1/orgs/" + id, token);
      INFO(id << ": " << r.describe());
      CHECK(r.status == 200);
    }
  };

  // The drain route is the service admin's: no token, an organization
  // admin's token, and an unknown member are refused; nothing is marked.
  auto& n1 = c.node(0);
  CHECK(n1.post("", "/admin/v1/cluster/members/n2/drain", "").status == 401);
  CHECK(n1.post(orgs[0].second, "/admin/v1/cluster/members/n2/drain", "").status
        == 403);
  CHECK(n1.get(orgs[0].second, "/admin/v1/cluster/members/n2/drain").status
        == 403);
  CHECK(n1.del(orgs[0].second, "/admin/v1/cluster/members/n2/drain").status
        == 403);
  auto unknown = n1.post(admin_token, "/admin/v1/cluster/members/n9/drain", "");
  CHECK(unknown.status == 404);
  auto marks = store.range("/crmsync/drain/", true);
  REQUIRE(marks);
  CHECK(marks->kvs.empty());

  // A fourth member joins: exactly the shards rendezvous gives it move,
  // nothing else does.
  std::vector<std::string> four{"n1", "n2", "n3", "n4"};
  auto n4_port = c.start_extra("n4");
  REQUIRE(rendezvous(four, shards) != rendezvous(three, shards));
  CHECK(eventually(
      [&] { return stored_owners(store) == rendezvous(four, shards); },
      std::chrono::seconds(90), std::chrono::milliseconds(250)));
  INFO("n4: " << api_client{n4_port}.get(admin_token, "/admin/v1/shards").body);
  all_readable();
  uint64_t moved = 0;
  for (int i = 0; i < cluster_env::size; ++i)
    moved += metric(c.node(i),
                    "crmsync_cluster_shard_moves_total{reason=\"rebalance\"}");
  uint64_t expected = 0;
  auto before = rendezvous(three, shards), after = rendezvous(four, shards);
  for (uint32_t s = 0; s < shards; ++s)
    expected += before[s] != after[s];
  CHECK(moved == expected);

  // Drain the old member with the most shards with crmsyncctl: it
  // follows the progress until that member owns nothing; its shards go
  // where rendezvous without it says.
  int victim_i = 0;
  for (int i = 1; i < cluster_env::size; ++i)
    if (std::count(after.begin(), after.end(), c.node_id(i))
        > std::count(after.begin(), after.end(), c.node_id(victim_i)))
      victim_i = i;
  auto victim = c.node_id(victim_i);
  REQUIRE(std::count(after.begin(), after.end(), victim) > 0);
  int asker = (victim_i + 1) % cluster_env::size;
  auto url = "http://127.0.0.1:" + std::to_string(c.http_port(asker));
  auto ctl = run_ctl({"--node", url, "--token", admin_token, "drain", victim});
  INFO(ctl.out << ctl.err);
  CHECK(ctl.rc == 0);
  CHECK(ctl.out.find(victim + ": 0 shards left, drained") != std::string::npos);
  std::vector<std::string> without;
  for (auto& id : four)
    if (id != victim)
      without.push_back(id);
  CHECK(stored_owners(store) == rendezvous(without, shards));
  // t15-balance: it is replaced as a follower too (the primaries it
  // followed add another member, then drop it).
  CHECK(eventually(
      [&] {
        auto r = c.node(asker).get(admin_token, "/admin/v1/shards");
        return r.status == 200 && r.u64("/nodes/" + victim + "/followers") == 0;
      },
      std::chrono::seconds(90), std::chrono::milliseconds(250)));
  auto status = c.node(asker).get(admin_token, "/admin/v1/cluster/members/"
                                                   + victim + "/drain");
  E2E_REQUIRE_STATUS(status, 200);
  CHECK(status.boolean("/draining"));
  CHECK(status.boolean("/done"));
  CHECK(status.u64("/shards_left") == 0);
  auto view = c.node(asker).get(admin_token, "/admin/v1/cluster");
  for (size_t m = 0; m < view.size("/members"); ++m) {
    auto base = "/members/" + std::to_string(m);
    CHECK(view.boolean(base + "/draining")
          == (view.str(base + "/id") == victim));
  }
  all_readable();
  CHECK(
      metric(c.node(victim_i),
             "crmsync_cluster_shard_moves_total{reason=\"drain\"}")
      == static_cast<uint64_t>(std::count(after.begin(), after.end(), victim)));

  // The drain ended: the member takes its share back.
  auto undrain = c.node(asker).del(admin_token, "/admin/v1/cluster/members/"
                                                    + victim + "/drain");
  E2E_REQUIRE_STATUS(undrain, 200);
  CHECK_FALSE(undrain.boolean("/draining"));
  CHECK(eventually(
      [&] { return stored_owners(store) == rendezvous(four, shards); },
      std::chrono::seconds(90), std::chrono::milliseconds(250)));
  all_readable();
}
