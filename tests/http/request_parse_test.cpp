// Reading one request from bytes with the server's parser and limits
// (http/server.hpp parse_request), as each connection does.
#include <catch2/catch.hpp>

#include <string>

#include "http/server.hpp"

using namespace crmsync::http;

TEST_CASE("a complete request is read into method, path, query, headers",
          "[http][parse]") {
  request req;
  REQUIRE(parse_request("POST /api/v1/orgs/a%20b/events?limit=5&x=%41 "
                        "HTTP/1.1\r\nHost: crm.example\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: 2\r\n\r\n{}",
                        1024, req)
          == parse_outcome::complete);
  CHECK(req.method == "POST");
  CHECK(req.target == "/api/v1/orgs/a%20b/events?limit=5&x=%41");
  CHECK(req.path == "/api/v1/orgs/a b/events");
  CHECK(req.query == "limit=5&x=%41");
  CHECK(req.header("content-type") == "application/json");
  CHECK(req.body == "{}");
}

TEST_CASE("a chunked body is read whole", "[http][parse]") {
  request req;
  REQUIRE(parse_request("POST /webhooks/graph HTTP/1.1\r\nHost: a\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n"
                        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                        1024, req)
          == parse_outcome::complete);
  CHECK(req.body == "abcde");
}

TEST_CASE("requests cut short, too large or malformed are told apart",
          "[http][parse]") {
  request req;
  CHECK(parse_request("", 1024, req) == parse_outcome::incomplete);
  CHECK(parse_request("GET / HTTP/1.1\r\nHost: a\r\n", 1024, req)
        == parse_outcome::incomplete);
  CHECK(parse_request("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 1024,
                      req)
        == parse_outcome::incomplete);
  CHECK(parse_request("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10, req)
        == parse_outcome::body_too_large);
  std::string big
      = "GET / HTTP/1.1\r\nX-Big: " + std::string(17000, 'a') + "\r\n\r\n";
  CHECK(parse_request(big, 1024, req) == parse_outcome::headers_too_large);
  CHECK(parse_request("GET / HTTP/9.9\r\n\r\n", 1024, req)
        == parse_outcome::bad_request);
  CHECK(parse_request("GET /a%zz HTTP/1.1\r\n\r\n", 1024, req)
        == parse_outcome::bad_request);
}
