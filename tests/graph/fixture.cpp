#include "tests/graph/fixture.hpp"

#include <simdjson.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "common/crypto.hpp"
#include "emulator/service.hpp"
#include "graph/wire.hpp"
#include "http/server.hpp"
#include "http/url.hpp"
#include "tests/support/temp_dir.hpp"

namespace crmsync::graph_test {

namespace {

/// 2026-11-26T14:00:00Z, where every fixture's clock starts.
constexpr int64_t start_ms = 1795701600000;

std::unique_ptr<http::server> start_server(crmsync::emulator::service& svc,
                                           std::string cert, std::string key) {
  http::server_config sc;
  sc.host = "127.0.0.1";
  sc.port = 0;
  sc.threads = 4;
  sc.tls_cert_file = std::move(cert);
  sc.tls_key_file = std::move(key);
  auto s = std::make_unique<http::server>(
      sc, [&svc](http::request&& req, http::responder_ptr r) {
        svc.handle(std::move(req), std::move(r));
      });
  std::string err;
  if (!s->start(err))
    throw std::runtime_error("cannot start the emulator: " + err);
  return s;
}

void run(const std::string& command) {
  if (std::system(command.c_str()) != 0)
    throw std::runtime_error("failed: " + command);
}

/// A CA and a certificate for localhost / 127.0.0.1 signed by it.
void make_certificates(const std::string& dir) {
  {
    std::ofstream ext{dir + "/server.ext"};
    ext << "basicConstraints=critical,CA:FALSE\n"
           "keyUsage=critical,digitalSignature,keyEncipherment\n"
           "extendedKeyUsage=serverAuth\n"
           "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  }
  const std::string quiet = " 2>/dev/null >/dev/null";
  run("cd " + dir
      + " && openssl req -x509 -newkey ec -pkeyopt "
        "ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
        "-days 2 -subj '/CN=crmsync graph test CA' "
        "-addext 'basicConstraints=critical,CA:TRUE' "
        "-addext 'keyUsage=critical,keyCertSign,cRLSign'"
      + quiet);
  run("cd " + dir
      + " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -keyout server.key -out server.csr -subj '/CN=localhost'"
      + quiet);
  run("cd " + dir
      + " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -days 2 -extfile server.ext -out server.pem"
      + quiet);
}

} // namespace

// -- the clock
// -------------------------------------------------------------------

test_clock::test_clock()
    : start_ms_(start_ms), started_(std::chrono::steady_clock::now()) {}

int64_t test_clock::now() const {
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started_)
                     .count();
  return start_ms_ + elapsed + offset_ms_.load();
}

void test_clock::advance(std::chrono::milliseconds d) {
  offset_ms_ += d.count();
}

// -- the emulator
// ----------------------------------------------------------------

struct emulator::state {
  std::shared_ptr<test_clock> clock = std::make_shared<test_clock>();
  std::unique_ptr<test::temp_dir> dir;
  std::unique_ptr<crmsync::emulator::service> service;
  std::unique_ptr<http::server> server;
  std::unique_ptr<http::server> tls_server;
  std::unique_ptr<http::client> control;
};

emulator::emulator(emulator_options opts) : state_(std::make_unique<state>()) {
  if (!crypto::init())
    throw std::runtime_error("libsodium failed to start");
  crmsync::emulator::service_config cfg;
  cfg.token_lifetime = opts.token_lifetime;
  cfg.mailbox_requests_per_window = opts.mailbox_requests_per_window;
  cfg.mailbox_window = opts.mailbox_window;
  cfg.now_ms = [c = state_->clock] {
    return c->now();
  };
  state_->service
      = std::make_unique<crmsync::emulator::service>(std::move(cfg));
  state_->server = start_server(*state_->service, {}, {});
  if (opts.tls) {
    state_->dir = std::make_unique<test::temp_dir>();
    make_certificates(state_->dir->path());
    state_->tls_server
        = start_server(*state_->service, state_->dir->path() + "/server.pem",
                       state_->dir->path() + "/server.key");
  }
  state_->control
      = std::make_unique<http::client>("127.0.0.1", state_->server->port());

  auto t = send(
      "POST", "/_emulator/tenants",
      std::string{R"({"id":")"} + contoso_id + R"(","domain":")" + contoso
          + R"(","users":[{"id":")" + admin_id
          + R"(","userPrincipalName":"admin@contoso.example",)"
            R"("displayName":"Ada Admin","mail":"admin@contoso.example",)"
            R"("isAdmin":true},)"
            R"({"userPrincipalName":"alex@contoso.example",)"
            R"("displayName":"Alex Wilber"},)"
            R"({"userPrincipalName":"bob@contoso.example",)"
            R"("displayName":"Bob Kelly"}]})");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view id;
  if (t.status != 201 || parser.parse(t.body).get(root)
      || root.at_pointer("/users/1/id").get_string().get(id))
    throw std::runtime_error("cannot seed the tenant: " + t.body);
  alex_id = std::string{id};
  if (root.at_pointer("/users/2/id").get_string().get(id))
    throw std::runtime_error("cannot seed the tenant: " + t.body);
  bob_id = std::string{id};
  consented_ = std::string{"[\""} + contoso + "\"]";
  seed_app();
}

emulator::~emulator() {
  if (state_->tls_server)
    state_->tls_server->stop();
  state_->server->stop();
  // The service before the servers: its delay line sends the answers it
  // still holds (latency injected) to responders of the servers' sessions.
  state_->service.reset();
}

std::string emulator::origin() const {
  return "http://127.0.0.1:" + std::to_string(state_->server->port());
}

std::string emulator::tls_origin() const {
  if (!state_->tls_server)
    throw std::logic_error("this fixture serves no HTTPS");
  return "https://localhost:" + std::to_string(state_->tls_server->port());
}

std::string emulator::ca_file() const {
  if (!state_->dir)
    throw std::logic_error("this fixture serves no HTTPS");
  return state_->dir->path() + "/ca.pem";
}

int64_t emulator::now() const {
  return state_->clock->now();
}

void emulator::advance(std::chrono::milliseconds d) {
  state_->clock->advance(d);
}

std::function<int64_t()> emulator::clock() const {
  return [c = state_->clock] {
    return c->now();
  };
}

http::client_response emulator::send(std::string_view method,
                                     std::string_view target,
                                     std::string_view body) {
  http::client_response out;
  std::string err;
  if (!state_->control->request(method, target, body, {}, out, err))
    throw std::runtime_error(std::string{method} + " " + std::string{target}
                             + ": " + err);
  return out;
}

void emulator::faults(std::string_view json) {
  auto r = send("POST", "/_emulator/faults", json);
  if (r.status != 200)
    throw std::runtime_error("faults refused: " + r.body);
}

std::string emulator::seed_tenant_with_users(std::string_view domain,
                                             size_t n) {
  std::string body = R"({"domain":")" + std::string{domain} + R"(","users":[)";
  for (size_t i = 0; i < n; ++i) {
    if (i > 0)
      body += ',';
    body += R"({"userPrincipalName":"user)" + std::to_string(i) + "@"
            + std::string{domain} + R"("})";
  }
  body += "]}";
  auto r = send("POST", "/_emulator/tenants", body);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view id;
  if (r.status != 201 || parser.parse(r.body).get(root)
      || root["id"].get_string().get(id))
    throw std::runtime_error("cannot seed tenant: " + r.body);
  consented_.pop_back();
  consented_ += ",\"" + std::string{domain} + "\"]";
  seed_app();
  return std::string{id};
}

void emulator::seed_app() {
  auto r = send("POST", "/_emulator/apps",
                std::string{R"({"client_id":")"} + client_id
                    + R"(","client_secret":")" + client_secret
                    + R"(","tenants":)" + consented_ + "}");
  if (r.status != 201)
    throw std::runtime_error("cannot seed the app: " + r.body);
}

graph::config emulator::config() const {
  graph::config c;
  c.graph_base_url = origin() + "/v1.0";
  c.login_base_url = origin();
  c.client_id = client_id;
  c.client_secret = client_secret;
  c.io_timeout = std::chrono::seconds{10};
  c.backoff_base = std::chrono::milliseconds{10};
  c.backoff_max = std::chrono::milliseconds{100};
  c.now_ms = clock();
  return c;
}

std::string sign_in(emulator& e, graph::client& c, std::string_view login_hint,
                    std::string_view redirect_uri, std::string_view nonce) {
  auto link = c.authorize_url(redirect_uri, "state-1", nonce)
              + "&login_hint=" + http::percent_encode(login_hint);
  graph::wire::url u;
  std::string err;
  if (!graph::wire::parse_url(link, u, err))
    throw std::runtime_error(err);
  auto r = e.send("GET", u.target);
  auto location = r.header("Location");
  auto q = location.find('?');
  http::query_params params;
  if (r.status != 302 || q == std::string::npos
      || !http::parse_query(location.substr(q + 1), params))
    throw std::runtime_error(
        "sign-in did not redirect: " + std::to_string(r.status) + " " + r.body);
  auto code = http::find_param(params, "code");
  if (code == nullptr)
    throw std::runtime_error("no code in " + location);
  return *code;
}

} // namespace crmsync::graph_test
