// The cluster port as an outsider meets it: only a client that presents a
// certificate signed by the cluster's CA gets a connection, and so an
// answer to any message. The first attempt (a real node's credentials)
// shows that the probe reaches the endpoint at all, so the refusals below
// it are refusals and not a probe that cannot connect.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "protocol/cluster.hpp"
#include "protocol/errors.hpp"
#include "protocol/messages.hpp"
#include "protocol/type_ids.hpp"
#include "storage/db.hpp"
#include "tests/cluster/cluster_fixture.hpp"
#include "tests/e2e/office365_fixture.hpp"
#include "tests/support/node_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace crmsync::e2e {

namespace {

struct credentials {
  bool tls = false; ///< false: CAF's plain middleman, as before
  std::string ca, cert, key;
};

/// Connects to the cluster port as `who` and asks the endpoint who it is;
/// the node id it names, or "" when there was no connection or no answer.
/// With `then_exit`, it next sends the endpoint an exit message.
std::string ask_hello(uint16_t port, const credentials& who,
                      bool then_exit = false) {
  caf::actor_system_config cfg;
  register_types(cfg);
  cfg.load<caf::io::middleman>();
  if (who.tls) {
    cfg.load<caf::openssl::manager>();
    cfg.openssl_cafile = who.ca;
    cfg.openssl_certificate = who.cert;
    cfg.openssl_key = who.key;
  }
  caf::actor_system sys{cfg};
  auto h = who.tls ? caf::openssl::remote_actor(sys, "127.0.0.1", port)
                   : sys.middleman().remote_actor("127.0.0.1", port);
  if (!h)
    return "";
  std::string said;
  caf::scoped_actor self{sys};
  self->request(*h, std::chrono::seconds(5), atom::hello_atom_v,
                std::string{"outsider"})
      .receive([&](std::string& id, std::string&) { said = id; },
               [](caf::error&) {});
  if (then_exit)
    self->send_exit(*h, caf::exit_reason::user_shutdown);
  return said;
}

/// What the endpoint answers `who` (connected with a certificate of the
/// cluster CA, but not a member the node dialled or greeted) to a read of a
/// row, a command for a tenant as the service administrator, and a
/// forwarded HTTP request: the API form of each error, "" for an answer.
std::vector<std::string> ask_as_non_member(uint16_t port,
                                           const credentials& who) {
  caf::actor_system_config cfg;
  register_types(cfg);
  cfg.load<caf::io::middleman>();
  cfg.load<caf::openssl::manager>();
  cfg.openssl_cafile = who.ca;
  cfg.openssl_certificate = who.cert;
  cfg.openssl_key = who.key;
  caf::actor_system sys{cfg};
  auto h = caf::openssl::remote_actor(sys, "127.0.0.1", port);
  REQUIRE(h);
  caf::scoped_actor self{sys};
  std::vector<std::string> out;
  auto answer = [&](auto&&... xs) {
    std::string got = "no answer";
    self->request(*h, std::chrono::seconds(5), xs...)
        .receive([&](caf::message&) { got = ""; },
                 [&](caf::error& e) { got = to_api_error(e).code; });
    out.push_back(got);
  };
  key_read kr;
  kr.column = static_cast<uint8_t>(storage::column::lookup);
  kr.key = "anything";
  answer(atom::read_atom_v, kr);
  get_org cmd;
  cmd.who.service_admin = true;
  answer(atom::route_atom_v,
         entity_key{entity_kind::tenant, tenant_id{1}, user_id{}},
         caf::make_message(cmd));
  http_forward f;
  f.method = "GET";
  f.target = "/healthz";
  f.via = "n2";
  answer(atom::forward_atom_v, f);
  return out;
}

} // namespace

TEST_CASE("cluster: the cluster port answers only holders of a certificate "
          "of the cluster CA",
          "[e2e][cluster][security]") {
  test::temp_dir dir;
  auto ours = dir.path() + "/certs";
  auto theirs = dir.path() + "/other-ca";
  make_cluster_certs(ours, {"n1", "n2"});
  // Another CA, with a certificate for the very same node name.
  make_cluster_certs(theirs, {"n2"});
  // n1's cluster port is named beforehand (see cluster_port()); n2 never
  // comes: its port is held closed for the whole test.
  auto cport = cluster_port();
  closed_port absent_n2;
  auto absent = absent_n2.port();
  node_process n1;
  node_options o;
  o.data_dir = dir.path() + "/n1";
  o.admin_token = admin_token;
  o.extra_args = {"--node-id",         "n1",
                  "--cluster-listen",  "127.0.0.1:" + std::to_string(cport),
                  "--peers",           "n2=127.0.0.1:" + std::to_string(absent),
                  "--cluster-ca-file", ours + "/ca.pem",
                  "--cluster-cert",    ours + "/n1.pem",
                  "--cluster-key",     ours + "/n1.key"};
  n1.start(o);

  // A member's credentials: the endpoint answers (the probe works).
  CHECK(ask_hello(cport,
                  {true, ours + "/ca.pem", ours + "/n2.pem", ours + "/n2.key"})
        == "n1");
  SECTION("an exit message from a member does not stop the endpoint") {
    CHECK(
        ask_hello(cport,
                  {true, ours + "/ca.pem", ours + "/n2.pem", ours + "/n2.key"},
                  true)
        == "n1");
  }
  SECTION("a certificate of the cluster CA is not membership: reads, "
          "commands and forwarded requests are refused") {
    auto got = ask_as_non_member(
        cport, {true, ours + "/ca.pem", ours + "/n2.pem", ours + "/n2.key"});
    CHECK(got
          == std::vector<std::string>{"forbidden", "forbidden", "forbidden"});
  }
  SECTION("a client of CAF's plain middleman gets no answer") {
    CHECK(ask_hello(cport, {}) == "");
  }
  SECTION("a TLS client without a certificate gets no answer") {
    // CAF's OpenSSL module without credentials: anonymous TLS.
    CHECK(ask_hello(cport, {true, "", "", ""}) == "");
  }
  SECTION("a client whose certificate another CA signed gets no answer") {
    // It even trusts our CA, so only its own certificate is at fault.
    CHECK(ask_hello(cport, {true, ours + "/ca.pem", theirs + "/n2.pem",
                            theirs + "/n2.key"})
          == "");
  }
  SECTION("a client that does not trust the node's CA does not talk to it") {
    CHECK(ask_hello(cport, {true, theirs + "/ca.pem", theirs + "/n2.pem",
                            theirs + "/n2.key"})
          == "");
  }
  // A refused handshake leaves nothing behind that hurts the members: the
  // next member connection is answered (OpenSSL's per-thread error queue
  // once carried a refusal's error into the next connection's handshake).
  CHECK(ask_hello(cport,
                  {true, ours + "/ca.pem", ours + "/n2.pem", ours + "/n2.key"})
        == "n1");
  INFO(n1.log_tail());
  CHECK(n1.running());
}

TEST_CASE("cluster: crmsyncd refuses to form a cluster without valid "
          "certificates",
          "[e2e][cluster][security]") {
  test::temp_dir dir;
  auto ours = dir.path() + "/certs";
  auto theirs = dir.path() + "/other-ca";
  make_cluster_certs(ours, {"n1"});
  make_cluster_certs(theirs, {"n1"});
  auto base = std::string{CRMSYNCD_PATH} + " --data-dir " + dir.path()
              + "/never --node-id n1 --cluster-listen 127.0.0.1:7001 "
                "--peers n2=127.0.0.1:7002";
  struct bad_case {
    std::string args;
    std::string says;
  };
  std::vector<bad_case> cases{
      {"", "needs --cluster-ca-file, --cluster-cert and --cluster-key"},
      {" --cluster-ca-file " + ours + "/ca.pem --cluster-cert " + ours
           + "/n1.pem",
       "needs --cluster-ca-file, --cluster-cert and --cluster-key"},
      {" --cluster-ca-file " + ours + "/ca.pem --cluster-cert " + theirs
           + "/n1.pem --cluster-key " + theirs + "/n1.key",
       "is not valid under the cluster CA"},
      {" --cluster-ca-file " + ours + "/ca.pem --cluster-cert " + ours
           + "/n1.pem --cluster-key " + theirs + "/n1.key",
       "is not the key of the certificate"},
      {" --cluster-ca-file " + ours + "/missing.pem --cluster-cert " + ours
           + "/n1.pem --cluster-key " + ours + "/n1.key",
       "cannot be read"},
      {" --cluster-ca-file " + ours + "/ca.pem --cluster-cert " + ours
           + "/n1.key --cluster-key " + ours + "/n1.key",
       "holds no PEM certificate"},
  };
  for (auto& bad : cases) {
    int code = -1;
    auto out = run_command(base + bad.args + " 2>&1", code);
    INFO(bad.args << " -> " << out);
    CHECK(code == 2);
    CHECK(out.find(bad.says) != std::string::npos);
  }
  int code = -1;
  auto out
      = run_command(std::string{CRMSYNCD_PATH} + " --data-dir " + dir.path()
                        + "/never --cluster-cert " + ours + "/n1.pem 2>&1",
                    code);
  INFO(out);
  CHECK(code == 2);
  CHECK(out.find("are for a cluster") != std::string::npos);
}

} // namespace crmsync::e2e
