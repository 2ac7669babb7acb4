// graph::client over HTTPS to the emulator's TLS listener, whose
// certificate (for localhost) is signed by a throwaway CA: trusted with
// ca_file, refused without it (the system store does not know the CA).
#include <catch2/catch.hpp>

#include <string>

#include "graph/client.hpp"
#include "tests/graph/fixture.hpp"

using namespace crmsync;
using graph_test::emulator;
using namespace std::chrono_literals;

namespace {

graph::config over_https(const emulator& e) {
  auto cfg = e.config();
  cfg.graph_base_url = e.tls_origin() + "/v1.0";
  cfg.login_base_url = e.tls_origin();
  return cfg;
}

} // namespace

TEST_CASE("HTTPS calls succeed when ca_file trusts the server's CA") {
  test::emulator_options opts;
  opts.tls = true;
  emulator e{opts};
  auto cfg = over_https(e);
  cfg.ca_file = e.ca_file();
  graph::client c{cfg};
  graph::response out;
  graph::error err;
  INFO(err.describe());
  REQUIRE(c.call(emulator::contoso, "", "GET", "/users/" + e.alex_id, "", out,
                 err));
  CHECK(out.status == 200);
  // Links come back on the scheme used, and are followed there.
  std::vector<std::string> items;
  std::string next;
  REQUIRE(c.list_page(emulator::contoso, "/users?$top=1", items, next, err));
  REQUIRE(next.rfind(e.tls_origin() + "/v1.0/users?", 0) == 0);
  REQUIRE(c.list_page(emulator::contoso, next, items, next, err));
  CHECK(items.size() == 1);
  // One keep-alive connection served all four requests (token included).
  CHECK(c.stats().requests == 4);
}

TEST_CASE("HTTPS calls fail when the server's CA is not trusted") {
  test::emulator_options opts;
  opts.tls = true;
  emulator e{opts};
  auto cfg = over_https(e);
  cfg.max_attempts = 2;
  graph::client c{cfg};
  graph::response out;
  graph::error err;
  REQUIRE_FALSE(c.call(emulator::contoso, "", "GET", "/users/" + e.alex_id, "",
                       out, err));
  CHECK(err.status == 0);
  CHECK(err.code == "transport");
  CHECK(err.message.find("TLS handshake") != std::string::npos);
  CHECK(err.attempts == 2);
}
