// End-to-end: every HTTP request has an id (issue 16). It is answered in
// X-Request-Id, written in every JSON log line of the request and in the
// audit entries the request causes. A client chooses it only when it is a
// trusted proxy (--trusted-proxies, addresses and CIDR ranges) and the id
// is safe to write (charset and length); anyone else gets a new one.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/support/api_client.hpp"
#include "tests/support/guid.hpp"

using namespace crmsync::e2e;
using crmsync::test::is_guid;

namespace {

/// One JSON line of the node's log.
struct log_line {
  std::string level;
  std::string message;
  std::string node;
  std::string request_id;
  std::string org;
};

std::string member(simdjson::dom::element doc, const char* name) {
  std::string_view v;
  return doc[name].get(v) == simdjson::SUCCESS ? std::string{v} : "";
}

/// Every line of the log; REQUIREs each to be a JSON object with time,
/// level, message and node.
std::vector<log_line> json_lines(const std::string& log) {
  simdjson::dom::parser parser;
  std::vector<log_line> out;
  std::istringstream lines{log};
  for (std::string line; std::getline(lines, line);) {
    INFO(line);
    simdjson::dom::element doc;
    REQUIRE(parser.parse(line).get(doc) == simdjson::SUCCESS);
    REQUIRE(doc.is_object());
    log_line l{member(doc, "level"), member(doc, "message"),
               member(doc, "node"), member(doc, "request_id"),
               member(doc, "org")};
    CHECK(!member(doc, "time").empty());
    CHECK(!l.level.empty());
    CHECK(!l.message.empty());
    out.push_back(std::move(l));
  }
  return out;
}

api_response with_id(api_client& api, std::string_view method,
                     std::string_view target, std::string_view token,
                     std::string_view id, std::string_view body = {}) {
  return api.request(method, target, token, body, "application/json",
                     {{"X-Request-Id", std::string{id}}});
}

} // namespace

TEST_CASE("a request id from a client that is no trusted proxy is replaced",
          "[e2e][request_ids]") {
  // The test connects from 127.0.0.1, which is not in the trusted range.
  test_node node{{"--trusted-proxies", "10.0.0.0/8,192.168.0.1"}};
  auto chosen = with_id(node.api(), "GET", "/healthz", "", "chosen-by-client");
  E2E_REQUIRE_STATUS(chosen, 200);
  CHECK(chosen.header("X-Request-Id") != "chosen-by-client");
  CHECK(is_guid(chosen.header("X-Request-Id")));
  auto none = node.api().request("GET", "/healthz", "");
  CHECK(is_guid(none.header("X-Request-Id")));
  CHECK(none.header("X-Request-Id") != chosen.header("X-Request-Id"));
  // Every answer has one, errors included.
  auto missing = node.api().request("GET", "/no/such/route", "");
  E2E_REQUIRE_STATUS(missing, 404);
  CHECK(is_guid(missing.header("X-Request-Id")));
}

TEST_CASE("a trusted proxy's request id is kept when it is safe to log",
          "[e2e][request_ids]") {
  test_node node{{"--trusted-proxies", "10.0.0.0/8,127.0.0.0/8"}};
  auto kept = with_id(node.api(), "GET", "/healthz", "", "proxy-id.42:abc");
  E2E_REQUIRE_STATUS(kept, 200);
  CHECK(kept.header("X-Request-Id") == "proxy-id.42:abc");
  // Quotes, braces, blanks and over-long ids could forge log fields: even a
  // trusted proxy's are replaced.
  for (std::string bad : {std::string{"a\"b"}, std::string{"{\"x\":1}"},
                          std::string{"two words"}, std::string(129, 'x')}) {
    INFO(bad);
    auto r = with_id(node.api(), "GET", "/healthz", "", bad);
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.header("X-Request-Id") != bad);
    CHECK(is_guid(r.header("X-Request-Id")));
  }
}

TEST_CASE("a request's id is in its JSON log lines and its audit entries",
          "[e2e][request_ids]") {
  test_node node{{"--trusted-proxies", "127.0.0.1", "--log-format", "json",
                  "--node-id", "n-logs", "--log-level", "info"}};
  auto& api = node.api();
  auto org = create_org(api, "Acme", "admin@acme.example");
  const std::string id = "trace-me-42";
  auto made = with_id(api, "POST", "/api/v1/me/tokens", org.admin_token, id,
                      R"({"name":"ci","expires_in_days":30})");
  E2E_REQUIRE_STATUS(made, 201);
  CHECK(made.header("X-Request-Id") == id);
  auto read
      = with_id(api, "GET", org_path(org.id), org.admin_token, "trace-me-43");
  E2E_REQUIRE_STATUS(read, 200);

  // The audit entry the request caused names it; others name their own.
  auto audit = api.get(org.admin_token, org_path(org.id) + "/audit");
  E2E_REQUIRE_STATUS(audit, 200);
  INFO(audit.body);
  bool found = false;
  for (size_t i = 0; i < audit.size("/items"); ++i) {
    auto base = "/items/" + std::to_string(i);
    if (audit.str(base + "/action") == "token.created") {
      found = true;
      CHECK(audit.str(base + "/request_id") == id);
    }
  }
  CHECK(found);

  // Every line of the log is one JSON object; the request's lines carry
  // its id and the node, the access line its route and status.
  auto lines = json_lines(node.process().log());
  bool access = false, org_line = false;
  for (auto& l : lines) {
    CHECK(l.node == "n-logs");
    if (l.request_id == id
        && l.message.rfind("http: POST /api/v1/me/tokens 201 ", 0) == 0)
      access = true;
    if (l.request_id == "trace-me-43"
        && l.message.rfind("http: GET /api/v1/orgs/{org} 200 ", 0) == 0)
      org_line = l.org == org.id;
  }
  INFO(node.process().log_tail());
  CHECK(access);
  CHECK(org_line);
}
