// End-to-end: hostile and broken input on raw sockets; the node survives.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/support/api_client.hpp"

using namespace crmsync::e2e;

namespace {

using steady = std::chrono::steady_clock;

// One plain TCP connection to the node.
class raw_conn {
public:
  /// `source`: the local address to connect from (another loopback
  /// address is another source to the node), or nullptr.
  explicit raw_conn(uint16_t port, const char* source = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
      throw std::runtime_error("socket failed");
    if (source != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ::inet_pton(AF_INET, source, &local.sin_addr);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local))
          != 0) {
        ::close(fd_);
        throw std::runtime_error(std::string{"bind failed: "}
                                 + std::strerror(errno));
      }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      throw std::runtime_error(std::string{"connect failed: "}
                               + std::strerror(errno));
    }
  }
  ~raw_conn() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  raw_conn(const raw_conn&) = delete;
  raw_conn& operator=(const raw_conn&) = delete;

  void shutdown_write() {
    ::shutdown(fd_, SHUT_WR);
  }

  /// Sends a little without waiting for an answer; false once the peer
  /// is gone.
  bool send_some(std::string_view data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT)
           == static_cast<ssize_t>(data.size());
  }

  /// Sends one header line every `every` (never the blank line that ends
  /// them) until the peer closes the connection; true if it did within
  /// `timeout`.
  bool trickle_until_closed(std::chrono::milliseconds every,
                            std::chrono::milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    if (!send_some("GET /healthz HTTP/1.1\r\nHost: node\r\n"))
      return true;
    while (steady::now() < deadline) {
      if (closed_by_peer(every))
        return true;
      if (!send_some("X-Slow: a\r\n"))
        return true;
    }
    return false;
  }

  /// Sends `data` while reading whatever comes back, until the peer closes,
  /// a complete response was read (when `stop_at_response`), or the
  /// deadline. A send failure (the peer stopped reading) ends the sending
  /// but not the reading. Returns what was received.
  std::string exchange(std::string_view data, std::chrono::milliseconds timeout,
                       bool stop_at_response = true,
                       bool* send_failed = nullptr) {
    const auto deadline = steady::now() + timeout;
    size_t sent = 0;
    bool sending = !data.empty();
    std::string got;
    for (;;) {
      if (stop_at_response && response_complete(got))
        return got;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - steady::now())
                      .count();
      if (left <= 0)
        return got;
      pollfd p{fd_, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
      int n = ::poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        continue;
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        auto r = ::recv(fd_, buf, sizeof(buf), 0);
        if (r > 0) {
          got.append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r == 0 || (errno != EINTR && errno != EAGAIN))
          return got; // closed or reset
      }
      if (sending && (p.revents & POLLOUT)) {
        auto chunk = std::min<size_t>(data.size() - sent, 65536);
        auto w = ::send(fd_, data.data() + sent, chunk,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          sent += static_cast<size_t>(w);
          if (sent == data.size())
            sending = false;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          sending = false;
          if (send_failed)
            *send_failed = true;
        }
      }
    }
  }

  /// True when the peer has closed the connection (EOF or reset) within
  /// the timeout, discarding anything else that arrives.
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - steady::now())
                      .count();
      if (left <= 0)
        return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0)
        continue;
      char buf[4096];
      auto r = ::recv(fd_, buf, sizeof(buf), 0);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
        return true;
    }
  }

  static bool response_complete(const std::string& s) {
    auto end = s.find("\r\n\r\n");
    if (end == std::string::npos)
      return false;
    auto head = s.substr(0, end);
    for (auto& c : head)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto cl = head.find("content-length:");
    if (cl == std::string::npos)
      return true;
    auto len = std::strtoull(head.c_str() + cl + 15, nullptr, 10);
    return s.size() >= end + 4 + len;
  }

private:
  int fd_ = -1;
};

int status_of(const std::string& response) {
  if (response.compare(0, 9, "HTTP/1.1 ") != 0 || response.size() < 12)
    return 0;
  return std::atoi(response.substr(9, 3).c_str());
}

std::string body_of(const std::string& response) {
  auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string{} : response.substr(end + 4);
}

const std::chrono::milliseconds io_timeout{10000};

} // namespace

TEST_CASE_METHOD(
    acme_fixture,
    "robustness: garbage, truncated and oversized requests, hostile JSON",
    "[e2e][robustness]") {
  auto sam
      = create_user(api, org.admin_token, org.id, "sam@acme.example", "Sam");
  auto ev = create_event(
      api, org.id, sam,
      event_body("Keep me", "2026-07-01T09:00:00Z", "2026-07-01T10:00:00Z"));
  const auto ev_path = event_path(org.id, ev.str("/id"));
  auto intact = [&] {
    api_client c{node.port()};
    auto h = c.get("", "/healthz");
    CHECK(h.status == 200);
    auto e = c.get(sam.token, ev_path);
    CHECK(e.status == 200);
    CHECK(e.json() == ev.json());
  };
  const std::string auth = "Authorization: Bearer " + sam.token + "\r\n";
  const std::string events_target = user_events_path(org.id, sam.id);

  SECTION("garbage bytes") {
    {
      raw_conn c{node.port()};
      auto r = c.exchange("GARBAGE\r\n\r\n", io_timeout);
      CHECK(status_of(r) == 400);
      CHECK(body_of(r).find("\"bad_request\"") != std::string::npos);
      // Answers of the parser carry the same safety headers as the API's.
      CHECK(r.find("X-Content-Type-Options: nosniff\r\n") != std::string::npos);
      CHECK(r.find("Content-Security-Policy: default-src 'none'")
            != std::string::npos);
      CHECK(c.closed_by_peer(io_timeout));
    }
    {
      // Something like a TLS ClientHello followed by random bytes.
      std::string junk = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
      std::mt19937 rng{7};
      for (int i = 0; i < 4096; ++i)
        junk += static_cast<char>(rng() & 0xff);
      raw_conn c{node.port()};
      auto r = c.exchange(junk, io_timeout);
      CHECK(status_of(r) == 400);
      CHECK(c.closed_by_peer(io_timeout));
    }
    {
      raw_conn c{node.port()};
      auto r = c.exchange(
          "GET /healthz HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n",
          io_timeout);
      CHECK(status_of(r) == 400);
    }
    {
      raw_conn c{node.port()};
      auto r
          = c.exchange(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ")
                           + std::string(1, '\0') + "\x01\r\n\r\n",
                       io_timeout);
      CHECK(status_of(r) == 400);
    }
    {
      raw_conn c{node.port()};
      auto r = c.exchange("GET /api/v1/orgs/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
                          io_timeout);
      CHECK(status_of(r) == 400);
    }
    {
      // Headers over the 16 KiB limit.
      raw_conn c{node.port()};
      auto r = c.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                              + std::string(20000, 'h') + "\r\n\r\n",
                          io_timeout);
      CHECK(status_of(r) == 431);
    }
    {
      // Content-Length that is not a number.
      raw_conn c{node.port()};
      auto r = c.exchange(
          "POST " + events_target + " HTTP/1.1\r\nHost: x\r\n" + auth
              + "Content-Type: application/json\r\nContent-Length: "
                "lots\r\n\r\n{}",
          io_timeout);
      CHECK(status_of(r) == 400);
    }
    // Connections opened and dropped at once.
    for (int i = 0; i < 50; ++i)
      raw_conn c{node.port()};
    intact();
  }

  SECTION("truncated requests") {
    {
      // Body shorter than Content-Length, then the client stops sending.
      raw_conn c{node.port()};
      auto r = c.exchange(
          "POST " + events_target + " HTTP/1.1\r\nHost: x\r\n" + auth
              + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                "{\"title\":\"tr",
          std::chrono::milliseconds(200), true);
      CHECK(r.empty()); // the node waits for the rest
      c.shutdown_write();
      r = c.exchange("", io_timeout);
      // Either a 400 or just a close: never a success.
      CHECK((r.empty() || status_of(r) == 400));
      CHECK(c.closed_by_peer(io_timeout));
    }
    {
      // Headers cut off mid-line, connection dropped.
      raw_conn c{node.port()};
      c.exchange("POST /api/v1/orgs HTTP/1.1\r\nHost: x\r\nContent-Le",
                 std::chrono::milliseconds(50));
    }
    // Half-sent requests left hanging open do not block anyone else.
    std::vector<std::unique_ptr<raw_conn>> hanging;
    for (int i = 0; i < 20; ++i) {
      hanging.push_back(std::make_unique<raw_conn>(node.port()));
      hanging.back()->exchange(
          i % 2 ? "GET /heal"
                : "POST " + events_target
                      + " HTTP/1.1\r\nContent-Length: 50\r\n\r\n{",
          std::chrono::milliseconds(1));
    }
    intact();
    auto more = api.post(sam.token, events_target,
                         event_body("while hanging", "2026-07-02T09:00:00Z",
                                    "2026-07-02T10:00:00Z"));
    CHECK(more.status == 201);
    // Nothing from the truncated requests was stored.
    auto list = api.get(sam.token, events_target);
    REQUIRE(list.status == 200);
    CHECK(list.size("/items") == 2);
    intact();
    // Hanging connections do not hold up a graceful stop.
    const auto t0 = steady::now();
    CHECK(node.stop() == 0);
    CHECK(steady::now() - t0 < std::chrono::seconds(5));
    hanging.clear();
  }

  SECTION("pipelined requests are answered in order") {
    std::string two_events;
    for (int i = 0; i < 2; ++i) {
      auto body
          = event_body("pipe " + std::to_string(i),
                       "2026-07-0" + std::to_string(i + 3) + "T09:00:00Z",
                       "2026-07-0" + std::to_string(i + 3) + "T10:00:00Z");
      two_events += "POST " + events_target + " HTTP/1.1\r\nHost: x\r\n" + auth
                    + "Content-Type: application/json\r\nContent-Length: "
                    + std::to_string(body.size()) + "\r\n\r\n" + body;
    }
    const std::string requests = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                 + two_events + "GET " + ev_path
                                 + " HTTP/1.1\r\nHost: x\r\n" + auth
                                 + "Connection: close\r\n\r\n";
    raw_conn c{node.port()};
    auto all = c.exchange(requests, io_timeout, false); // until the node closes
    std::vector<std::string> responses;
    while (!all.empty() && raw_conn::response_complete(all)) {
      auto head_end = all.find("\r\n\r\n") + 4;
      auto head = all.substr(0, head_end);
      std::string lower = head;
      for (auto& ch : lower)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      auto cl = lower.find("content-length:");
      size_t len = cl == std::string::npos
                       ? 0
                       : std::strtoull(lower.c_str() + cl + 15, nullptr, 10);
      responses.push_back(all.substr(0, head_end + len));
      all.erase(0, head_end + len);
    }
    CHECK(all.empty());
    REQUIRE(responses.size() == 4);
    CHECK(status_of(responses[0]) == 200);
    CHECK(body_of(responses[0]) == "{\"status\":\"ok\"}");
    CHECK(status_of(responses[1]) == 201);
    CHECK(body_of(responses[1]).find("\"title\":\"pipe 0\"")
          != std::string::npos);
    CHECK(status_of(responses[2]) == 201);
    CHECK(body_of(responses[2]).find("\"title\":\"pipe 1\"")
          != std::string::npos);
    CHECK(status_of(responses[3]) == 200);
    CHECK(body_of(responses[3]).find("\"title\":\"Keep me\"")
          != std::string::npos);
    auto list = api.get(sam.token, events_target);
    CHECK(list.size("/items") == 3);
    intact();
  }

  SECTION("a 5 MiB body") {
    std::string body
        = event_body("huge", "2026-07-01T09:00:00Z", "2026-07-01T10:00:00Z",
                     ",\"description\":" + json_str(std::string(5 << 20, 'x')));
    raw_conn c{node.port()};
    bool send_failed = false;
    auto r
        = c.exchange("POST " + events_target + " HTTP/1.1\r\nHost: x\r\n" + auth
                         + "Content-Type: application/json\r\nContent-Length: "
                         + std::to_string(body.size()) + "\r\n\r\n" + body,
                     io_timeout, true, &send_failed);
    INFO(r.substr(0, 300));
    CHECK(status_of(r) == 413);
    CHECK(body_of(r).find("\"payload_too_large\"") != std::string::npos);
    CHECK_FALSE(send_failed);
    // The same through the blocking client, which sends the whole body
    // before it reads: the node drops the rest of the body instead of
    // resetting the connection, so the 413 arrives every time.
    for (int i = 0; i < 3; ++i) {
      api_client big{node.port()};
      api_response res;
      std::string err;
      INFO("attempt " << i);
      bool answered
          = big.try_request("POST", events_target, sam.token, body, res, err);
      INFO(err);
      REQUIRE(answered);
      CHECK(res.status == 413);
      CHECK(res.error_code() == "payload_too_large");
      CHECK(res.header("Connection") == "close");
    }
    // Chunked, too.
    raw_conn c2{node.port()};
    std::string chunked
        = "POST " + events_target + " HTTP/1.1\r\nHost: x\r\n" + auth
          + "Content-Type: application/json\r\nTransfer-Encoding: "
            "chunked\r\n\r\n";
    for (size_t off = 0; off < body.size(); off += 65536) {
      auto n = std::min<size_t>(65536, body.size() - off);
      char hex[32];
      std::snprintf(hex, sizeof(hex), "%zx\r\n", n);
      chunked += hex;
      chunked.append(body, off, n);
      chunked += "\r\n";
    }
    chunked += "0\r\n\r\n";
    auto r2 = c2.exchange(chunked, io_timeout);
    CHECK(status_of(r2) == 413);
    auto list = api.get(sam.token, events_target);
    REQUIRE(list.status == 200);
    CHECK(list.size("/items") == 1);
    intact();
  }

  SECTION("a small chunked request is served") {
    std::string body
        = event_body("chunked", "2026-07-03T09:00:00Z", "2026-07-03T10:00:00Z");
    std::string req = "POST " + events_target + " HTTP/1.1\r\nHost: x\r\n"
                      + auth
                      + "Content-Type: application/json\r\nTransfer-Encoding: "
                        "chunked\r\n\r\n";
    char hex[32];
    std::snprintf(hex, sizeof(hex), "%zx\r\n", size_t{10});
    req += hex + body.substr(0, 10) + "\r\n";
    std::snprintf(hex, sizeof(hex), "%zx\r\n", body.size() - 10);
    req += hex + body.substr(10) + "\r\n0\r\n\r\n";
    raw_conn c{node.port()};
    auto r = c.exchange(req, io_timeout);
    CHECK(status_of(r) == 201);
    CHECK(body_of(r).find("\"title\":\"chunked\"") != std::string::npos);
    intact();
  }

  SECTION("deeply nested JSON") {
    auto deep = api.post(sam.token, events_target, std::string(100000, '['));
    CHECK(deep.status == 400);
    CHECK(deep.error_code() == "malformed_json");
    std::string closed_deep = std::string(5000, '[') + std::string(5000, ']');
    auto deep2 = api.post(sam.token, events_target, closed_deep);
    CHECK(deep2.status == 400);
    std::string in_field
        = "{\"title\":\"x\",\"start\":\"2026-07-01T09:00:00Z\","
          "\"end\":\"2026-07-01T10:00:00Z\",\"participants\":"
          + std::string(100000, '[');
    auto deep3 = api.post(sam.token, events_target, in_field);
    CHECK(deep3.status == 400);
    CHECK(deep3.error_code() == "malformed_json");
    std::string objects;
    for (int i = 0; i < 20000; ++i)
      objects += "{\"a\":";
    objects += "1";
    objects += std::string(20000, '}');
    auto deep4 = api.post(admin_token, "/api/v1/orgs", objects);
    CHECK(deep4.status == 400);
    CHECK(api.get(admin_token, "/admin/v1/tenants").size("/items") == 1);
    intact();
  }

  SECTION("invalid UTF-8 in a title") {
    for (std::string bad :
         {std::string("\xff\xfe"), std::string("ab\xc0\xaf"),
          std::string("\xed\xa0\x80"), std::string("\xe2\x82"),
          std::string("\xf4\x90\x80\x80"), std::string("x\x80y")}) {
      INFO("bytes of length " << bad.size());
      auto body = "{\"title\":\"" + bad
                  + "\",\"start\":\"2026-07-01T09:00:00Z\","
                    "\"end\":\"2026-07-01T10:00:00Z\"}";
      auto r = api.post(sam.token, events_target, body);
      CHECK(r.status == 400);
      CHECK(r.error_code() == "malformed_json");
      // In a PATCH, too.
      auto p = api.patch(sam.token, ev_path, "{\"title\":\"" + bad + "\"}");
      CHECK(p.status == 400);
    }
    // Raw control characters inside a string are not JSON either.
    auto ctl = api.post(sam.token, events_target,
                        std::string("{\"title\":\"a\x01")
                            + "b\",\"start\":\"2026-07-01T09:00:00Z\","
                              "\"end\":\"2026-07-01T10:00:00Z\"}");
    CHECK(ctl.status == 400);
    // Valid multi-byte text and escapes round-trip exactly.
    const std::string fancy
        = "Caf\xc3\xa9 \xe2\x98\x95 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89 "
          "\"q\" \\ \t";
    auto good = api.post(sam.token, events_target,
                         "{\"title\":" + json_str(fancy)
                             + ",\"start\":\"2026-07-05T09:00:00Z\","
                               "\"end\":\"2026-07-05T10:00:00Z\",\"location\":"
                               "\"\\u00e9\\ud83d\\ude00\"}");
    REQUIRE(good.status == 201);
    CHECK(good.str("/title") == fancy);
    CHECK(good.str("/location") == "\xc3\xa9\xf0\x9f\x98\x80");
    auto back = api.get(sam.token, event_path(org.id, good.str("/id")));
    CHECK(back.str("/title") == fancy);
    CHECK(back.json() == good.json());
    auto list = api.get(sam.token, events_target);
    CHECK(list.size("/items") == 2);
    intact();
  }
}

TEST_CASE_METHOD(
    acme_fixture,
    "robustness: lone surrogate escapes are not stored as broken text",
    "[e2e][robustness]") {
  const auto path = user_events_path(org.id, org.admin_id);
  for (const char* esc :
       {"\\ud800", "\\udc00", "a\\ud800b", "\\ud800\\u0041"}) {
    INFO(esc);
    auto r = api.post(org.admin_token, path,
                      std::string("{\"title\":\"") + esc
                          + "\",\"start\":\"2026-07-01T09:00:00Z\",\"end\":"
                            "\"2026-07-01T10:00:00Z\"}");
    // Either refused as malformed JSON, or stored and read back unchanged.
    if (r.status == 201) {
      auto back = api.get(org.admin_token, event_path(org.id, r.str("/id")));
      CHECK(back.str("/title") == r.str("/title"));
      FAIL_CHECK("a lone surrogate escape was accepted: " << r.describe());
    } else {
      CHECK(r.status == 400);
      CHECK(r.error_code() == "malformed_json");
    }
  }
}

namespace {

const std::string healthz_request
    = "GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n";

/// The node's HTTP counters (GET /admin/v1/status).
uint64_t http_stat(api_client& api, const char* name) {
  auto st = api.get(admin_token, "/admin/v1/status");
  REQUIRE(st.status == 200);
  return st.u64(std::string{"/http/"} + name);
}

} // namespace

TEST_CASE("slow clients: headers must arrive within the header deadline",
          "[e2e][robustness][slowloris]") {
  // 1 s here (10 s by default); the idle time between keep-alive requests
  // stays the (longer) idle timeout.
  test_node node{{"--header-timeout-ms", "1000"}};
  const std::chrono::milliseconds generous{8000};

  SECTION("a connection that says nothing is closed") {
    raw_conn c{node.port()};
    CHECK(c.closed_by_peer(generous));
  }
  SECTION("headers trickling in are cut off") {
    raw_conn c{node.port()};
    CHECK(c.trickle_until_closed(std::chrono::milliseconds(200), generous));
    CHECK(http_stat(node.api(), "header_timeouts") >= 1);
  }
  SECTION("a request that stalls after its first byte is cut off") {
    raw_conn c{node.port()};
    auto first = c.exchange(healthz_request, generous);
    REQUIRE(status_of(first) == 200);
    REQUIRE(c.send_some("G"));
    CHECK(c.closed_by_peer(generous));
  }
  SECTION("an idle keep-alive connection is not in the header phase") {
    raw_conn c{node.port()};
    auto first = c.exchange(healthz_request, generous);
    REQUIRE(status_of(first) == 200);
    // Longer than the header deadline, well inside the idle timeout.
    CHECK_FALSE(c.closed_by_peer(std::chrono::milliseconds(2500)));
    auto second = c.exchange(healthz_request, generous);
    CHECK(status_of(second) == 200);
  }
  // Prompt clients are served as before.
  CHECK(node.api().get("", "/healthz").status == 200);
}

TEST_CASE("slow clients: connections from one source address are capped",
          "[e2e][robustness][slowloris]") {
  // A long header deadline: the held connections stay open throughout.
  test_node node{
      {"--max-connections-per-source", "3", "--header-timeout-ms", "60000"}};
  const std::chrono::milliseconds generous{8000};
  std::vector<std::unique_ptr<raw_conn>> held;
  for (int i = 0; i < 3; ++i)
    held.push_back(std::make_unique<raw_conn>(node.port(), "127.0.0.2"));
  // The fourth from the same address is closed at once...
  raw_conn over{node.port(), "127.0.0.2"};
  CHECK(over.closed_by_peer(generous));
  // ...while the three stay open, and another source is served.
  for (auto& c : held)
    CHECK_FALSE(c->closed_by_peer(std::chrono::milliseconds(200)));
  api_client other{node.port()};
  CHECK(other.get("", "/healthz").status == 200);
  CHECK(http_stat(other, "connections_refused") >= 1);
  // A held connection can still finish its request.
  auto r = held[0]->exchange(healthz_request, generous);
  CHECK(status_of(r) == 200);
  // Once one goes, its place is free again.
  held.pop_back();
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    raw_conn again{node.port(), "127.0.0.2"};
    served = status_of(again.exchange(healthz_request, generous)) == 200;
    if (!served)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(served);
}

TEST_CASE("slow clients: connections in the header phase are capped",
          "[e2e][robustness][slowloris]") {
  test_node node{{"--max-header-connections", "3",
                  "--max-connections-per-source", "0", "--header-timeout-ms",
                  "60000"}};
  const std::chrono::milliseconds generous{8000};
  // The test client's connection is idle keep-alive: not in the phase.
  REQUIRE(node.api().get("", "/healthz").status == 200);
  std::vector<std::unique_ptr<raw_conn>> held;
  for (int i = 0; i < 3; ++i)
    held.push_back(std::make_unique<raw_conn>(node.port()));
  raw_conn over{node.port()};
  CHECK(over.closed_by_peer(generous));
  for (auto& c : held)
    CHECK_FALSE(c->closed_by_peer(std::chrono::milliseconds(200)));
  // Connections past their headers (keep-alive) do not count: one held
  // connection finishes its request, and a new one gets in.
  auto r = held[0]->exchange(healthz_request, generous);
  REQUIRE(status_of(r) == 200);
  raw_conn next{node.port()};
  CHECK(status_of(next.exchange(healthz_request, generous)) == 200);
  CHECK(node.api().get("", "/healthz").status == 200);
}
