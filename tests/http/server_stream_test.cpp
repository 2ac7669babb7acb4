// A streamed answer (http::response::stream): its parts arrive in order as
// one chunked body, each asked for after the previous one was written, and
// a producer that fails cuts the body short so that the client notices.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>

#include "http/client.hpp"
#include "http/server.hpp"

using namespace crmsync::http;

namespace {

response streamed(int parts, bool fail_after_first) {
  response res;
  res.content_type = "application/x-ndjson";
  auto n = std::make_shared<int>(0);
  auto calls = std::make_shared<int>(0);
  res.stream = [n, calls, parts, fail_after_first](std::string& out) {
    // Now and then a call with nothing to add: skipped, not taken for the
    // end of the body.
    if (++*calls % 7 == 3)
      return stream_step::more;
    if (fail_after_first && *n == 1)
      return stream_step::failed;
    out += "{\"part\":" + std::to_string((*n)++) + "}\n";
    return *n < parts ? stream_step::more : stream_step::last;
  };
  return res;
}

} // namespace

TEST_CASE("a streamed answer arrives whole and chunked, a failed one is "
          "cut short",
          "[http][stream]") {
  server_config cfg;
  cfg.port = 0;
  cfg.threads = 1;
  server srv{cfg, [](request&& req, responder_ptr r) {
               if (req.path == "/many")
                 return r->reply(streamed(1000, false));
               if (req.path == "/broken")
                 return r->reply(streamed(1000, true));
               response plain;
               plain.body = "{}";
               r->reply(std::move(plain));
             }};
  std::string err;
  REQUIRE(srv.start(err));
  client c{"127.0.0.1", srv.port()};
  client_response res;
  REQUIRE(c.request("GET", "/many", {}, {}, res, err));
  CHECK(res.status == 200);
  CHECK(res.header("transfer-encoding") == "chunked");
  CHECK(res.header("content-type") == "application/x-ndjson");
  std::string expected;
  for (int i = 0; i < 1000; ++i)
    expected += "{\"part\":" + std::to_string(i) + "}\n";
  CHECK(res.body == expected);
  // The connection is still good for the next request.
  REQUIRE(c.request("GET", "/plain", {}, {}, res, err));
  CHECK(res.body == "{}");

  client_response cut;
  CHECK_FALSE(c.request("GET", "/broken", {}, {}, cut, err));
  INFO(err);
  CHECK(cut.body.find("{\"part\":1}") == std::string::npos);
  srv.stop();
}
