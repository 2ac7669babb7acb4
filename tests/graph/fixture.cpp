#include "tests/graph/fixture.hpp"

#include <stdexcept>

#include "graph/wire.hpp"
#include "http/url.hpp"

namespace crmsync::graph_test {

emulator::emulator(test::emulator_options opts) {
  opts.mode = test::emulator_mode::in_process;
  opts.clock = test::test_clock::mode::running;
  opts.shared = false;
  opts.threads = 4;
  start(opts);
  auto t = seed_tenant(
      std::string{R"({"id":")"} + contoso_id + R"(","domain":")" + contoso
      + R"(","users":[{"id":")" + admin_id
      + R"(","userPrincipalName":"admin@contoso.example",)"
        R"("displayName":"Ada Admin","mail":"admin@contoso.example",)"
        R"("isAdmin":true},)"
        R"({"userPrincipalName":"alex@contoso.example",)"
        R"("displayName":"Alex Wilber"},)"
        R"({"userPrincipalName":"bob@contoso.example",)"
        R"("displayName":"Bob Kelly"}]})");
  alex_id = t.str("/users/1/id");
  bob_id = t.str("/users/2/id");
  consented_ = std::string{"[\""} + contoso + "\"]";
  register_app();
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
  auto id = seed_tenant(body).str("/id");
  consented_.pop_back();
  consented_ += ",\"" + std::string{domain} + "\"]";
  register_app();
  return id;
}

void emulator::register_app() {
  seed_app(client_id, client_secret, consented_);
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
