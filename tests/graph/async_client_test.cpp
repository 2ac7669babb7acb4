// http::async_client (http/async_client.hpp) against the emulator's Graph
// over real sockets: requests held back by injected latency are all in
// flight at once on two I/O threads, connections are kept alive and
// reused, a pooled connection the server closed is replaced (and one it
// closed while idle is not used at all), deadlines
// end an exchange, HTTPS verifies the server, and a client that goes away
// still answers every callback.
#include <catch2/catch.hpp>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/async_client.hpp"
#include "tests/graph/fixture.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync;
using graph_test::emulator;
using namespace std::chrono_literals;

namespace {

http::endpoint endpoint_of(uint16_t port, bool https = false,
                           std::string host = "127.0.0.1") {
  http::endpoint e;
  e.https = https;
  e.host = std::move(host);
  e.port = port;
  return e;
}

uint16_t port_of(const std::string& origin) {
  return static_cast<uint16_t>(std::stoi(origin.substr(origin.rfind(':') + 1)));
}

/// Sends and waits for the outcome (the test's thread may wait; the
/// client's threads never do).
http::request_outcome exchange(http::async_client& c,
                               http::outgoing_request r) {
  std::promise<http::request_outcome> p;
  auto f = p.get_future();
  c.send(std::move(r),
         [&p](http::request_outcome o) { p.set_value(std::move(o)); });
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  return f.get();
}

/// An app-only token for contoso from the emulator's token endpoint,
/// fetched with the async client itself (a form POST).
std::string app_token(http::async_client& c, const emulator& e) {
  http::outgoing_request r;
  r.to = endpoint_of(port_of(e.origin()));
  r.method = "POST";
  r.target = std::string("/") + emulator::contoso + "/oauth2/v2.0/token";
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  r.body = std::string("grant_type=client_credentials&client_id=")
           + emulator::client_id + "&client_secret=" + emulator::client_secret
           + "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";
  auto o = exchange(c, r);
  INFO(o.error << " " << o.response.body);
  REQUIRE(o.answered);
  REQUIRE(o.response.status == 200);
  const auto& b = o.response.body;
  const std::string key = "\"access_token\":\"";
  auto at = b.find(key);
  REQUIRE(at != std::string::npos);
  at += key.size();
  return b.substr(at, b.find('"', at) - at);
}

http::outgoing_request users_page(const emulator& e, const std::string& token,
                                  bool https = false) {
  http::outgoing_request r;
  r.to = https ? endpoint_of(port_of(e.tls_origin()), true, "localhost")
               : endpoint_of(port_of(e.origin()));
  r.target = "/v1.0/users?$top=1";
  r.headers = {{"Authorization", "Bearer " + token}};
  r.timeout = 10s;
  return r;
}

} // namespace

TEST_CASE("async client: requests held back by latency are all in flight "
          "at once on two I/O threads",
          "[async_client]") {
  emulator e;
  http::async_client_options opts;
  opts.io_threads = 2;
  http::async_client c{opts};
  const auto token = app_token(c, e);
  e.faults(R"({"latency_ms":300})");

  constexpr int n = 100;
  std::vector<std::promise<http::request_outcome>> promises(n);
  for (int i = 0; i < n; ++i)
    c.send(users_page(e, token), [&promises, i](http::request_outcome o) {
      promises[static_cast<size_t>(i)].set_value(std::move(o));
    });
  int ok = 0;
  for (auto& p : promises) {
    auto f = p.get_future();
    REQUIRE(f.wait_for(30s) == std::future_status::ready);
    auto o = f.get();
    INFO(o.error);
    if (o.answered && o.response.status == 200)
      ++ok;
  }
  CHECK(ok == n);
  // Two threads that waited for answers could have held at most two
  // connections; every request found none idle and opened its own.
  auto s = c.stats();
  CHECK(s.connections >= n);
  CHECK(s.max_in_flight >= n);
  CHECK(s.in_flight == 0);
  CHECK(s.answered == n + 1);
}

TEST_CASE("async client: a burst beyond the per-origin cap waits for "
          "connections instead of opening one each",
          "[async_client]") {
  emulator e;
  http::async_client_options opts;
  opts.max_per_origin = 8;
  http::async_client c{opts};
  const auto token = app_token(c, e);
  e.faults(R"({"latency_ms":100})");

  constexpr int n = 100;
  std::vector<std::promise<http::request_outcome>> promises(n);
  for (int i = 0; i < n; ++i)
    c.send(users_page(e, token), [&promises, i](http::request_outcome o) {
      promises[static_cast<size_t>(i)].set_value(std::move(o));
    });
  int ok = 0;
  for (auto& p : promises) {
    auto f = p.get_future();
    REQUIRE(f.wait_for(30s) == std::future_status::ready);
    auto o = f.get();
    INFO(o.error);
    if (o.answered && o.response.status == 200)
      ++ok;
  }
  CHECK(ok == n);
  auto s = c.stats();
  // Never more than eight sockets: the others waited and reused them.
  CHECK(s.connections <= 8);
  CHECK(s.waited >= n - 8);
  CHECK(s.waiting == 0);
  CHECK(s.reused >= n - 8);
  CHECK(s.open <= 8);
}

TEST_CASE("async client: a request waiting for a connection ends at its "
          "deadline, and the slot's next user still gets it",
          "[async_client]") {
  emulator e;
  http::async_client_options opts;
  opts.max_per_origin = 1;
  http::async_client c{opts};
  const auto token = app_token(c, e);
  e.faults(R"({"latency_ms":1500})");
  std::promise<http::request_outcome> first;
  c.send(users_page(e, token),
         [&first](http::request_outcome o) { first.set_value(std::move(o)); });
  // The first request holds the one connection before the second is sent
  // (the two I/O threads would otherwise take them in either order).
  const auto taken = [&c] {
    auto s = c.stats();
    return s.reused + s.connections >= 2; // the token's, then the first's
  };
  for (auto until = std::chrono::steady_clock::now() + 10s;
       !taken() && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(1ms);
  REQUIRE(taken());
  auto hurried = users_page(e, token);
  hurried.timeout = 200ms;
  auto o = exchange(c, hurried);
  CHECK_FALSE(o.answered);
  CHECK(o.timed_out);
  CHECK(o.error.find("waiting for a free connection") != std::string::npos);
  CHECK(c.stats().waiting == 0);
  auto f = first.get_future();
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  auto answered = f.get();
  INFO(answered.error);
  CHECK(answered.answered);
  // The one connection is free again: the next request takes it.
  e.faults(R"({"latency_ms":0})");
  auto again = exchange(c, users_page(e, token));
  CHECK(again.answered);
  CHECK(c.stats().connections == 1);
}

TEST_CASE("async client: one keep-alive connection carries requests in turn",
          "[async_client]") {
  emulator e;
  http::async_client c;
  const auto token = app_token(c, e);
  for (int i = 0; i < 4; ++i) {
    auto o = exchange(c, users_page(e, token));
    REQUIRE(o.answered);
    CHECK(o.response.status == 200);
    CHECK(o.reused_connection);
    CHECK_FALSE(o.response.header("content-type").empty());
  }
  CHECK(c.stats().connections == 1);
  CHECK(c.stats().reused == 4);
}

TEST_CASE("async client: a deadline ends an exchange that takes too long",
          "[async_client]") {
  emulator e;
  http::async_client c;
  const auto token = app_token(c, e);
  e.faults(R"({"latency_ms":2000})");
  auto slow = users_page(e, token);
  slow.timeout = 150ms;
  auto o = exchange(c, slow);
  INFO(o.error << " " << o.response.status << " " << o.response.body);
  CHECK_FALSE(o.answered);
  CHECK(o.timed_out);
  CHECK(o.error.find("timed out after 150 ms") != std::string::npos);
  CHECK(c.stats().timeouts == 1);
  // The connection that timed out is not pooled; the next request works.
  e.faults(R"({"latency_ms":0})");
  auto again = exchange(c, users_page(e, token));
  CHECK(again.answered);
  CHECK(again.response.status == 200);
}

TEST_CASE("async client: a refused connection is an outcome, not a hang",
          "[async_client]") {
  http::async_client c;
  http::outgoing_request r;
  r.to = endpoint_of(1); // nothing listens on a privileged port here
  auto o = exchange(c, r);
  CHECK_FALSE(o.answered);
  CHECK_FALSE(o.timed_out);
  CHECK(o.error.find("connecting to http://127.0.0.1:1 failed")
        != std::string::npos);
  CHECK(c.stats().failed == 1);
}

TEST_CASE("async client: HTTPS verifies the server's certificate",
          "[async_client]") {
  test::emulator_options eo;
  eo.tls = true;
  emulator e{eo};
  SECTION("trusted through the extra CA file") {
    http::async_client_options opts;
    opts.extra_ca_file = e.ca_file();
    http::async_client c{opts};
    const auto token = app_token(c, e);
    auto o = exchange(c, users_page(e, token, true));
    INFO(o.error);
    REQUIRE(o.answered);
    CHECK(o.response.status == 200);
  }
  SECTION("refused when the CA is unknown") {
    http::async_client c;
    auto o = exchange(c, users_page(e, "no-token", true));
    CHECK_FALSE(o.answered);
    CHECK(o.error.find("TLS handshake with https://localhost:")
          != std::string::npos);
  }
  SECTION("refused when the certificate does not name the host") {
    http::async_client_options opts;
    opts.extra_ca_file = e.ca_file();
    http::async_client c{opts};
    auto r = users_page(e, "no-token", true);
    r.to.server_name = "graph.microsoft.com"; // not in the certificate
    auto o = exchange(c, r);
    CHECK_FALSE(o.answered);
    CHECK(o.error.find("TLS handshake") != std::string::npos);
  }
  SECTION("a bad CA file is refused at construction") {
    http::async_client_options opts;
    opts.extra_ca_file = "/nonexistent/ca.pem";
    CHECK_THROWS_WITH(http::async_client{opts},
                      Catch::Contains("cannot load the CA file"));
  }
}

namespace {

/// A server of two connections, on 127.0.0.1: each answers "ok" as
/// keep-alive. With `break_reused`, the first connection then reads the
/// next request and closes without an answer (the connection broke under
/// a request); without, it closes right after its answer (the server
/// closed an idle connection). `first_closed` is set when the first
/// connection is closed.
class two_connection_server {
public:
  explicit two_connection_server(bool break_reused)
      : guard_([this] {
        ::shutdown(listener_, SHUT_RDWR);
        ::close(listener_);
      }) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr)
            == 0);
    REQUIRE(::listen(listener_, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len)
            == 0);
    port_ = ntohs(addr.sin_port);
    guard_.spawn([this, break_reused] {
      for (int i = 0; i < 2; ++i) {
        int conn = ::accept(listener_, nullptr, nullptr);
        if (conn < 0)
          return;
        read_request(conn);
        const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: "
                                   "2\r\n\r\nok";
        (void)::write(conn, answer.data(), answer.size());
        if (i == 0 && break_reused)
          read_request(conn);
        ::close(conn);
        if (i == 0)
          first_closed_.set_value();
      }
    });
  }

  uint16_t port() const {
    return port_;
  }
  void wait_first_closed() {
    first_closed_.get_future().wait();
  }

private:
  static void read_request(int conn) {
    std::string got;
    char buf[1024];
    while (got.find("\r\n\r\n") == std::string::npos) {
      auto n = ::read(conn, buf, sizeof buf);
      if (n <= 0)
        break;
      got.append(buf, static_cast<size_t>(n));
    }
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::promise<void> first_closed_;
  crmsync::test::thread_guard guard_;
};

} // namespace

TEST_CASE("async client: a connection that breaks under a request is "
          "replaced when that is safe",
          "[async_client]") {
  two_connection_server server{true};
  http::async_client c;
  http::outgoing_request r;
  r.to = endpoint_of(server.port());
  auto one = exchange(c, r);
  REQUIRE(one.answered);
  CHECK(one.response.body == "ok");
  SECTION("a GET is sent again on a fresh connection") {
    auto two = exchange(c, r);
    INFO(two.error);
    REQUIRE(two.answered);
    CHECK(two.response.body == "ok");
    CHECK_FALSE(two.reused_connection);
    CHECK(c.stats().connections == 2);
  }
  SECTION("a POST written whole is not sent twice") {
    // The server may have acted on it before the connection broke.
    r.method = "POST";
    r.body = "{}";
    auto two = exchange(c, r);
    CHECK_FALSE(two.answered);
    CHECK(two.error.find("reading from") != std::string::npos);
    CHECK(c.stats().connections == 1);
  }
}

TEST_CASE("async client: a pooled connection the server closed while idle "
          "is not used, whatever the method",
          "[async_client]") {
  two_connection_server server{false};
  http::async_client c;
  http::outgoing_request r;
  r.to = endpoint_of(server.port());
  auto one = exchange(c, r);
  REQUIRE(one.answered);
  server.wait_first_closed();
  // The server's end of stream waits in the pooled connection: a POST
  // (not sent twice once written) goes on a fresh connection.
  r.method = "POST";
  r.body = "{}";
  auto two = exchange(c, r);
  INFO(two.error);
  REQUIRE(two.answered);
  CHECK(two.response.body == "ok");
  CHECK_FALSE(two.reused_connection);
  CHECK(c.stats().connections == 2);
}

TEST_CASE("async client: going away answers the requests still in flight",
          "[async_client]") {
  emulator e;
  std::promise<http::request_outcome> p;
  auto f = p.get_future();
  std::promise<http::request_outcome> retried;
  auto g = retried.get_future();
  {
    http::async_client c;
    const auto token = app_token(c, e);
    e.faults(R"({"latency_ms":5000})");
    // Like a caller that retries on failure: the retry, sent from the
    // callback the destructor runs, is answered at once too.
    c.send(users_page(e, token), [&](http::request_outcome o) {
      c.send(users_page(e, token), [&retried](http::request_outcome again) {
        retried.set_value(std::move(again));
      });
      p.set_value(std::move(o));
    });
    // Give the request time to reach the emulator before stopping.
    REQUIRE(f.wait_for(200ms) == std::future_status::timeout);
  }
  REQUIRE(f.wait_for(0s) == std::future_status::ready);
  auto o = f.get();
  CHECK_FALSE(o.answered);
  CHECK(o.error.find("client stopped") != std::string::npos);
  REQUIRE(g.wait_for(0s) == std::future_status::ready);
  CHECK(g.get().error.find("client stopped before") != std::string::npos);
}
