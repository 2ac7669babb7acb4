// End-to-end: `crmsyncctl doctor` (issue 16, docs/MICROSOFT365.md) against
// real processes: a crmsyncd wired to a graph-emulator (the identity
// platform and Graph), and the public URL checked from outside the node.
// Each check is made to fail the way it fails in life: a replaced client
// secret, a tenant that has not consented, Graph refusing the app, a token
// endpoint that cannot be reached, a public URL that does not answer or
// answers something else than Graph's handshake wants. Only the service
// admin token may ask the node to run its checks.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/e2e/office365_fixture.hpp"
#include "tests/support/api_client.hpp"
#include "tests/support/ctl_runner.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::e2e;

namespace {

std::string url_of(uint16_t port) {
  return "http://127.0.0.1:" + std::to_string(port);
}

/// A loopback port nothing listens on (bound, then closed).
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string value_after(const std::vector<std::string>& args,
                        const std::string& flag) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == flag)
      return args[i + 1];
  FAIL("no " << flag << " in the node's arguments");
  return {};
}

/// One check of `doctor --json`.
struct check_result {
  std::string status;
  std::string message;
  std::string hint;
};

struct doctor_result {
  ctl_result ctl;
  std::map<std::string, check_result> checks;

  const check_result& operator[](const std::string& name) const {
    auto i = checks.find(name);
    if (i == checks.end())
      FAIL("no check " << name << " in " << ctl.out);
    return i->second;
  }
};

/// crmsyncctl --json doctor ARGS against `node_url`; REQUIREs its output
/// to be the JSON report.
doctor_result doctor(const std::string& node_url,
                     const std::vector<std::string>& args,
                     const std::string& token = admin_token) {
  std::vector<std::string> all{"--node", node_url, "--token",
                               token,    "--json", "doctor"};
  all.insert(all.end(), args.begin(), args.end());
  doctor_result out;
  out.ctl = run_ctl(all);
  INFO(out.ctl.out << out.ctl.err);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(out.ctl.out).get(doc) == simdjson::SUCCESS);
  simdjson::dom::array list;
  REQUIRE(doc["checks"].get_array().get(list) == simdjson::SUCCESS);
  for (simdjson::dom::element e : list) {
    std::string_view name, status, message, hint;
    REQUIRE(e["name"].get_string().get(name) == simdjson::SUCCESS);
    REQUIRE(e["status"].get_string().get(status) == simdjson::SUCCESS);
    REQUIRE(e["message"].get_string().get(message) == simdjson::SUCCESS);
    REQUIRE(e["hint"].get_string().get(hint) == simdjson::SUCCESS);
    out.checks[std::string{name}]
        = {std::string{status}, std::string{message}, std::string{hint}};
  }
  bool ok = false;
  REQUIRE(doc["ok"].get_bool().get(ok) == simdjson::SUCCESS);
  CHECK(ok == (out.ctl.rc == 0));
  return out;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A loopback HTTP server that answers every request with what `answer`
/// makes of the request's head (request line and headers): the stand-in
/// for whatever a public URL may point at.
class fake_endpoint {
public:
  explicit fake_endpoint(std::function<std::string(const std::string&)> answer)
      : answer_(std::move(answer)), threads_([this] { stop_ = true; }) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    threads_.spawn([this] { serve(); });
  }
  ~fake_endpoint() {
    threads_.join();
    ::close(fd_);
  }
  uint16_t port() const {
    return port_;
  }

private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0)
        continue;
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 5000) <= 0)
          break;
        auto n = ::read(c, buf, sizeof buf);
        if (n <= 0)
          break;
        head.append(buf, static_cast<size_t>(n));
      }
      auto reply = answer_(head);
      size_t sent = 0;
      while (sent < reply.size()) {
        auto n = ::write(c, reply.data() + sent, reply.size() - sent);
        if (n <= 0)
          break;
        sent += static_cast<size_t>(n);
      }
      ::close(c);
    }
  }

  std::function<std::string(const std::string&)> answer_;
  std::atomic<bool> stop_{false};
  int fd_ = -1;
  uint16_t port_ = 0;
  crmsync::test::thread_guard threads_;
};

std::string http_answer(int status, const std::string& type,
                        const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + type
         + "\r\nContent-Length: " + std::to_string(body.size())
         + "\r\nConnection: close\r\n\r\n" + body;
}

/// The validationToken of a request line as sent (still percent-encoded).
std::string raw_token(const std::string& head) {
  auto at = head.find("validationToken=");
  if (at == std::string::npos)
    return {};
  at += 16;
  return head.substr(at, head.find_first_of(" &", at) - at);
}

/// The emulator (the CRM's app registered, consented by contoso.com with
/// `secret` as its secret) and a node wired to it.
struct doctor_env {
  crmsync::test::temp_dir dir;
  office365_tenant o365{{dir.path() + "/emulator.log", 0, {}}};
  std::vector<std::string> args = o365.node_args();

  /// Registers the CRM's app again: `secret`, consented by `tenants`.
  void app(const std::string& secret, const std::vector<std::string>& tenants) {
    o365.register_app(value_after(args, "--client-id"), secret, tenants);
  }
  void consent() {
    app(value_after(args, "--client-secret"), {"contoso.com"});
  }
};

} // namespace

TEST_CASE("doctor: every check passes against a consenting tenant, an http "
          "public URL is only a warning",
          "[e2e][doctor]") {
  doctor_env env;
  env.consent();
  test_node node{env.args};
  auto d = doctor(url_of(node.port()), {"--tenant", "contoso.com"});
  CHECK(d.ctl.rc == 0);
  CHECK(d["node"].status == "pass");
  CHECK(d["token_endpoint"].status == "pass");
  CHECK(d["tenant_consent"].status == "pass");
  CHECK(has(d["tenant_consent"].message, "User.Read.All"));
  // The node's own public URL (its listener here) answers the handshake
  // on both webhook routes, but Graph wants https.
  CHECK(d["webhook_handshake"].status == "warn");
  CHECK(has(d["webhook_handshake"].message, url_of(node.port())));
  CHECK(has(d["webhook_handshake"].message, "/webhooks/graph/lifecycle"));
  CHECK(has(d["webhook_handshake"].message, "not https"));
  CHECK(has(d["webhook_handshake"].hint, "--public-url https://"));

  // The same as a person reads it.
  auto text = run_ctl({"--node", url_of(node.port()), "--token", admin_token,
                       "doctor", "--tenant", "contoso.com"});
  INFO(text.out << text.err);
  CHECK(text.rc == 0);
  CHECK(has(text.out, "PASS  node: "));
  CHECK(has(text.out, "PASS  token_endpoint: "));
  CHECK(has(text.out, "PASS  tenant_consent: "));
  CHECK(has(text.out, "WARN  webhook_handshake: "));
  CHECK(has(text.out, "      hint: Microsoft Graph sends notifications only "
                      "to https URLs"));
  CHECK(has(text.out, "3 passed, 1 warned, 0 failed, 0 skipped"));
}

TEST_CASE("doctor: a replaced client secret fails the token check with the "
          "identity platform's AADSTS error",
          "[e2e][doctor]") {
  doctor_env env;
  // The secret was replaced in Entra; the node still has the old one.
  env.app("a-new-secret-the-node-does-not-have", {"contoso.com"});
  test_node node{env.args};
  auto d = doctor(url_of(node.port()), {"--tenant", "contoso.com"});
  CHECK(d.ctl.rc == 1);
  CHECK(d["node"].status == "pass");
  CHECK(d["token_endpoint"].status == "fail");
  CHECK(has(d["token_endpoint"].message, "invalid_client"));
  CHECK(has(d["token_endpoint"].message, "AADSTS7000215"));
  CHECK(has(d["token_endpoint"].hint, "--client-secret"));
  CHECK(d["tenant_consent"].status == "skip");
  // What doctor does from outside does not depend on the secret.
  CHECK(d["webhook_handshake"].status == "warn");
}

TEST_CASE("doctor: a tenant without consent fails the consent check with "
          "the install and admin-consent links",
          "[e2e][doctor]") {
  doctor_env env; // the app is registered; no tenant has consented
  test_node node{env.args};
  auto d = doctor(url_of(node.port()), {"--tenant", "contoso.com"});
  CHECK(d.ctl.rc == 1);
  CHECK(d["token_endpoint"].status == "warn");
  CHECK(has(d["token_endpoint"].message, "AADSTS700016"));
  CHECK(d["tenant_consent"].status == "fail");
  CHECK(has(d["tenant_consent"].message, "no consent in contoso.com"));
  const auto& hint = d["tenant_consent"].hint;
  CHECK(has(hint, url_of(node.port()) + "/o365/install"));
  CHECK(has(hint, env.o365.url() + "/contoso.com/adminconsent?client_id="
                      + value_after(env.args, "--client-id")));
  CHECK(has(hint, "redirect_uri="));

  SECTION("a tenant the identity platform does not know") {
    auto u = doctor(url_of(node.port()), {"--tenant", "fabrikam.example"});
    CHECK(u.ctl.rc == 1);
    CHECK(u["tenant_consent"].status == "fail");
    CHECK(has(u["tenant_consent"].message, "no such tenant"));
    CHECK(has(u["token_endpoint"].message, "AADSTS90002"));
  }
  SECTION("consent given, and Graph refuses the app (a permission missing)") {
    env.consent();
    env.o365.set_faults(R"({"access_denied_rate":1})");
    auto g = doctor(url_of(node.port()), {"--tenant", "contoso.com"});
    CHECK(g.ctl.rc == 1);
    CHECK(g["token_endpoint"].status == "pass");
    CHECK(g["tenant_consent"].status == "fail");
    CHECK(has(g["tenant_consent"].message, "403 ErrorAccessDenied"));
    CHECK(has(g["tenant_consent"].message, "client-request-id "));
    CHECK(has(g["tenant_consent"].hint, "Calendars.ReadWrite"));
  }
}

TEST_CASE("doctor: a token endpoint the node cannot reach fails the token "
          "check",
          "[e2e][doctor]") {
  doctor_env env;
  env.consent();
  auto args = env.args;
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--login-base-url")
      args[i + 1] = url_of(closed_port());
  test_node node{args};
  auto d = doctor(url_of(node.port()), {"--tenant", "contoso.com"});
  CHECK(d.ctl.rc == 1);
  CHECK(d["token_endpoint"].status == "fail");
  CHECK(has(d["token_endpoint"].message, "cannot reach the identity "
                                         "platform's token endpoint"));
  CHECK(has(d["token_endpoint"].hint, "--login-base-url"));
  CHECK(d["tenant_consent"].status == "skip");
}

TEST_CASE("doctor: the public URL must answer Graph's validation handshake "
          "from outside the node",
          "[e2e][doctor]") {
  doctor_env env;
  env.consent();
  test_node node{env.args};
  const auto node_url = url_of(node.port());
  auto handshake = [&](const std::string& public_url) {
    auto d = doctor(node_url,
                    {"--tenant", "contoso.com", "--public-url", public_url});
    CHECK(d.ctl.rc == 1);
    CHECK(d["node"].status == "pass");
    CHECK(d["token_endpoint"].status == "pass");
    CHECK(d["tenant_consent"].status == "pass");
    CHECK(d["webhook_handshake"].status == "fail");
    return d["webhook_handshake"];
  };

  SECTION("nothing answers there") {
    auto c = handshake(url_of(closed_port()));
    CHECK(has(c.message, "got no answer"));
    CHECK(has(c.hint, "reverse proxy must pass /webhooks/ through"));
  }
  SECTION("something else answers there") {
    // The emulator has no /webhooks/graph (Graph's 400 for a bad segment).
    CHECK(has(handshake(env.o365.url()).message, "instead of 200"));
  }
  SECTION("a path prefix the node does not serve") {
    CHECK(has(handshake(node_url + "/crm").message, "answered HTTP 404"));
  }
  SECTION("a proxy that does not decode the token") {
    fake_endpoint raw{[](const std::string& head) {
      return http_answer(200, "text/plain", raw_token(head));
    }};
    CHECK(has(handshake(url_of(raw.port())).message, "URL-decoded"));
  }
  SECTION("a sign-in page in front of the node") {
    fake_endpoint login{[](const std::string&) {
      return http_answer(200, "text/html", "<html>Sign in</html>");
    }};
    CHECK(
        has(handshake(url_of(login.port())).message, "instead of text/plain"));
  }
  SECTION("a public URL that is no URL") {
    CHECK(has(handshake("ftp://crm.example.com").message, "not usable"));
  }
  SECTION("the node's own --public-url, when it is wrong") {
    auto args = env.args;
    args.push_back("--public-url");
    args.push_back(url_of(closed_port()));
    test_node misconfigured{args};
    auto d = doctor(url_of(misconfigured.port()), {"--tenant", "contoso.com"});
    CHECK(d.ctl.rc == 1);
    CHECK(d["webhook_handshake"].status == "fail");
    CHECK(has(d["webhook_handshake"].message, "got no answer"));
  }
}

TEST_CASE("doctor: without a tenant or without Office 365 it does not pass",
          "[e2e][doctor]") {
  SECTION("no --tenant: the node's checks are skipped") {
    doctor_env env;
    env.consent();
    test_node node{env.args};
    auto d = doctor(url_of(node.port()), {});
    CHECK(d.ctl.rc == 1);
    CHECK(d["token_endpoint"].status == "skip");
    CHECK(d["tenant_consent"].status == "skip");
    CHECK(has(d["tenant_consent"].hint, "--tenant"));
  }
  SECTION("a node without --client-id and --client-secret") {
    test_node node;
    auto d = doctor(url_of(node.port()), {"--tenant", "contoso.com"});
    CHECK(d.ctl.rc == 1);
    CHECK(d["token_endpoint"].status == "fail");
    CHECK(has(d["token_endpoint"].message, "not configured"));
    CHECK(d["tenant_consent"].status == "fail");
  }
  SECTION("a node that does not answer") {
    auto d = doctor(url_of(closed_port()), {"--tenant", "contoso.com"});
    CHECK(d.ctl.rc == 1);
    CHECK(d["node"].status == "fail");
    CHECK(has(d["node"].message, "does not answer"));
    CHECK(d["token_endpoint"].status == "skip");
    CHECK(d["webhook_handshake"].status == "skip");
  }
}

TEST_CASE("doctor: only the service admin token runs the node's checks",
          "[e2e][doctor]") {
  doctor_env env;
  env.consent();
  test_node node{env.args};
  auto& api = node.api();
  auto org = create_org(api, "Doctor Co", "boss@doctor.example");
  const std::string body = R"({"tenant":"contoso.com"})";

  auto none = api.request("POST", "/admin/v1/doctor", "", body);
  E2E_REQUIRE_STATUS(none, 401);
  auto wrong = api.request("POST", "/admin/v1/doctor", "not-a-token", body);
  E2E_REQUIRE_STATUS(wrong, 401);
  auto user = api.request("POST", "/admin/v1/doctor", org.admin_token, body);
  E2E_REQUIRE_STATUS(user, 403);
  CHECK(user.str("/error/code") == "forbidden");
  // Nothing of the checks leaks into a refusal.
  CHECK(!has(user.body, "token_endpoint"));

  auto ok = api.request("POST", "/admin/v1/doctor", admin_token, body);
  E2E_REQUIRE_STATUS(ok, 200);
  CHECK(ok.str("/checks/0/name") == "token_endpoint");
  CHECK(ok.str("/checks/0/status") == "pass");
  CHECK(ok.str("/public_url") == url_of(node.port()));
  // The secret is never in the answer.
  CHECK(!has(ok.body, value_after(env.args, "--client-secret")));

  SECTION("bad bodies") {
    auto bad = api.request("POST", "/admin/v1/doctor", admin_token,
                           R"({"tenant":"../../common"})");
    E2E_REQUIRE_STATUS(bad, 400);
    CHECK(bad.str("/error/code") == "invalid_field");
    CHECK(bad.str("/error/field") == "tenant");
    auto unknown = api.request("POST", "/admin/v1/doctor", admin_token,
                               R"({"tenant":"contoso.com","secret":"x"})");
    E2E_REQUIRE_STATUS(unknown, 400);
    CHECK(unknown.str("/error/code") == "unknown_field");
    auto text = api.request("POST", "/admin/v1/doctor", admin_token, body,
                            "text/plain");
    E2E_REQUIRE_STATUS(text, 415);
  }
  SECTION("crmsyncctl doctor with a user's token or a wrong one") {
    auto d = doctor(url_of(node.port()), {"--tenant", "contoso.com"},
                    org.admin_token);
    CHECK(d.ctl.rc == 1);
    CHECK(d["node"].status == "fail");
    CHECK(has(d["node"].message, "403"));
    CHECK(d["token_endpoint"].status == "skip");
    auto w = doctor(url_of(node.port()), {"--tenant", "contoso.com"},
                    "not-the-admin-token");
    CHECK(w["node"].status == "fail");
    CHECK(has(w["node"].message, "refused the admin token (401)"));
  }
}
