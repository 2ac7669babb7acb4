// The client's wire helpers (graph/wire.hpp): URL splitting, which hosts
// plain http may reach, Graph and OAuth error bodies, Retry-After, JSON
// string escaping, the mailbox a path touches, $batch answers; and
// error::describe().
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "graph/client.hpp"
#include "graph/wire.hpp"

using namespace crmsync::graph;

TEST_CASE("absolute URLs are split into origin and target") {
  wire::url u;
  std::string err;
  REQUIRE(
      wire::parse_url("HTTPS://Graph.Microsoft.com/v1.0/users?$top=5", u, err));
  CHECK(u.where.https);
  CHECK(u.where.host == "graph.microsoft.com");
  CHECK(u.where.port == 443);
  CHECK(u.target == "/v1.0/users?$top=5");
  CHECK(u.where.key() == "https://graph.microsoft.com:443");

  REQUIRE(wire::parse_url("http://127.0.0.1:8090", u, err));
  CHECK_FALSE(u.where.https);
  CHECK(u.where.port == 8090);
  CHECK(u.target == "/");

  REQUIRE(wire::parse_url("http://[::1]:81?x=1", u, err));
  CHECK(u.where.host == "::1");
  CHECK(u.target == "/?x=1");
  CHECK(u.where.key() == "http://[::1]:81");

  for (const char* bad :
       {"ftp://host/", "//host/x", "/users", "https://user@host/",
        "https://host:0/", "https://host:70000/", "https://host/a#frag",
        "https:///path", "https://ho st/", "https://[::1/"}) {
    INFO(bad);
    CHECK_FALSE(wire::parse_url(bad, u, err));
    CHECK_FALSE(err.empty());
  }
}

TEST_CASE("plain http may reach loopback hosts only") {
  CHECK(wire::is_loopback("127.0.0.1"));
  CHECK(wire::is_loopback("127.1.2.3"));
  CHECK(wire::is_loopback("::1"));
  CHECK(wire::is_loopback("localhost"));
  CHECK_FALSE(wire::is_loopback("127.0.0.1.example.com"));
  CHECK_FALSE(wire::is_loopback("127.example"));
  CHECK_FALSE(wire::is_loopback("10.0.0.1"));
  CHECK_FALSE(wire::is_loopback("localhost.example.com"));

  wire::url u;
  std::string err;
  REQUIRE(wire::parse_url("http://graph.example.com/v1.0", u, err));
  CHECK_FALSE(wire::transport_allowed(u, err));
  CHECK(err.find("graph.example.com") != std::string::npos);
  REQUIRE(wire::parse_url("https://graph.example.com/v1.0", u, err));
  CHECK(wire::transport_allowed(u, err));
  REQUIRE(wire::parse_url("http://localhost:8080/v1.0", u, err));
  CHECK(wire::transport_allowed(u, err));
}

TEST_CASE("Graph and OAuth error bodies are read") {
  std::string code, message;
  REQUIRE(wire::parse_error_body(
      R"({"error":{"code":"ErrorItemNotFound","message":"gone","innerError":{}}})",
      code, message));
  CHECK(code == "ErrorItemNotFound");
  CHECK(message == "gone");
  REQUIRE(wire::parse_error_body(
      R"({"error":"invalid_grant","error_description":"AADSTS70008: old"})",
      code, message));
  CHECK(code == "invalid_grant");
  CHECK(message == "AADSTS70008: old");
  CHECK_FALSE(
      wire::parse_error_body("<html>bad gateway</html>", code, message));
  CHECK_FALSE(wire::parse_error_body("", code, message));
  CHECK_FALSE(wire::parse_error_body(R"({"value":[]})", code, message));
}

TEST_CASE("Retry-After is read as delay-seconds") {
  CHECK(wire::parse_retry_after("10") == 10);
  CHECK(wire::parse_retry_after(" 0 ") == 0);
  CHECK_FALSE(wire::parse_retry_after(""));
  CHECK_FALSE(wire::parse_retry_after("-1"));
  CHECK_FALSE(wire::parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"));
  CHECK_FALSE(wire::parse_retry_after("99999999999"));
}

TEST_CASE("the mailbox a Graph path touches") {
  CHECK(wire::mailbox_of("/v1.0/users/abc/calendars", "/v1.0") == "abc");
  CHECK(wire::mailbox_of("/v1.0/users/bob%40contoso.example/calendarView?x=1",
                         "/v1.0")
        == "bob@contoso.example");
  CHECK(wire::mailbox_of("/v1.0/users/abc", "/v1.0").empty());
  CHECK(wire::mailbox_of("/v1.0/users/abc/", "/v1.0").empty());
  CHECK(wire::mailbox_of("/v1.0/users?$top=5", "/v1.0").empty());
  CHECK(wire::mailbox_of("/v1.0/subscriptions", "/v1.0").empty());
  CHECK(wire::mailbox_of("/beta/users/abc/events", "/v1.0").empty());
}

TEST_CASE("a $batch answer gives each item's id, status, body, Retry-After") {
  std::vector<wire::batch_item> items;
  REQUIRE(wire::parse_batch_answer(
      R"({"responses":[
        {"id":"2","status":201,"headers":{"Content-Type":"application/json"},
         "body":{"id":"AAMk","changeKey":"CQ"}},
        {"id":"1","status":429,"headers":{"Retry-After":"3"},
         "body":{"error":{"code":"ApplicationThrottled","message":"x"}}},
        {"id":"3","status":503,"headers":{"retry-after":7}},
        {"id":4,"status":200},
        {"id":"5","status":"200"},
        {"id":"6","status":204,"headers":{"Retry-After":"soon"}}]})",
      items));
  REQUIRE(items.size() == 4); // items 4 and 5 lack a string id or a status
  CHECK(items[0].id == "2");
  CHECK(items[0].status == 201);
  CHECK(items[0].body == R"({"id":"AAMk","changeKey":"CQ"})");
  CHECK_FALSE(items[0].retry_after);
  CHECK(items[1].id == "1");
  CHECK(items[1].retry_after == 3);
  CHECK(items[2].body.empty());
  CHECK(items[2].retry_after == 7);
  CHECK(items[3].id == "6");
  CHECK_FALSE(items[3].retry_after);
  CHECK_FALSE(wire::parse_batch_answer(R"({"value":[]})", items));
  CHECK(items.empty());
  CHECK_FALSE(wire::parse_batch_answer("not json", items));
}

TEST_CASE("errors describe themselves in one line") {
  error e;
  e.status = 429;
  e.code = "ApplicationThrottled";
  e.message = "slow down";
  e.attempts = 6;
  CHECK(e.describe()
        == "429 ApplicationThrottled: slow down (after 6 attempts)");
  error t;
  t.code = "transport";
  t.message = "connect failed";
  t.attempts = 1;
  CHECK(t.describe() == "transport: connect failed (after 1 attempt)");
}
