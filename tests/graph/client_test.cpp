// graph::client against the in-process graph-emulator over real sockets:
// app-only tokens (one fetch, renewal, 401), paging, retries (429 and 503
// with Retry-After, bounded attempts, transport failures, non-retriable
// 4xx), the per-mailbox budget (concurrency and window), $batch, and the
// refusal of plain http to other hosts.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "graph/client.hpp"
#include "tests/graph/fixture.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync;
using graph_test::emulator;
using namespace std::chrono_literals;

namespace {

const std::string tenant = emulator::contoso;

bool get_user(graph::client& c, const std::string& id, graph::response& out,
              graph::error& err) {
  return c.call(tenant, "", "GET", "/users/" + id, "", out, err);
}

/// A mailbox call: counts against that user's budget at both ends.
bool get_calendars(graph::client& c, const std::string& user,
                   graph::error& err) {
  graph::response out;
  return c.call(tenant, user, "GET", "/users/" + user + "/calendars", "", out,
                err);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
      .count();
}

} // namespace

// -- tokens
// ----------------------------------------------------------------------

TEST_CASE("an app-only token is fetched once and reused across calls") {
  emulator e;
  graph::client c{e.config()};
  for (int i = 0; i < 3; ++i) {
    graph::response out;
    graph::error err;
    INFO(err.describe());
    REQUIRE(get_user(c, e.alex_id, out, err));
    CHECK(out.status == 200);
    CHECK(out.body.find("alex@contoso.example") != std::string::npos);
  }
  auto s = c.stats();
  CHECK(s.token_fetches == 1);
  CHECK(s.requests == 4); // one token request, three calls
  CHECK(s.retries == 0);
  auto state = e.send("GET", "/_emulator/state");
  CHECK(state.body.find("\"tokens\":1") != std::string::npos);
}

TEST_CASE("concurrent first calls for one tenant share one token fetch") {
  emulator e;
  graph::client c{e.config()};
  std::atomic<int> ok{0};
  crmsync::test::thread_guard threads;
  for (int i = 0; i < 8; ++i)
    threads.spawn([&] {
      graph::response out;
      graph::error err;
      if (get_user(c, e.alex_id, out, err))
        ++ok;
    });
  threads.join();
  CHECK(ok == 8);
  CHECK(c.stats().token_fetches == 1);
}

TEST_CASE("a token is renewed once the clock passes its expiry") {
  emulator e;
  graph::client c{e.config()};
  graph::response out;
  graph::error err;
  REQUIRE(get_user(c, e.alex_id, out, err));
  e.advance(3700s); // both clocks: the token lived 3600 s
  INFO(err.describe());
  REQUIRE(get_user(c, e.alex_id, out, err));
  auto s = c.stats();
  CHECK(s.token_fetches == 2);
  CHECK(s.retries == 0); // renewed before sending, never refused
}

TEST_CASE("a token is renewed within token_renew_margin of its expiry") {
  emulator e;
  auto cfg = e.config();
  cfg.token_renew_margin = 300s;
  graph::client c{cfg};
  graph::response out;
  graph::error err;
  REQUIRE(get_user(c, e.alex_id, out, err));
  e.advance(3000s); // 600 s left: still fine
  REQUIRE(get_user(c, e.alex_id, out, err));
  CHECK(c.stats().token_fetches == 1);
  e.advance(400s); // 200 s left: renew
  REQUIRE(get_user(c, e.alex_id, out, err));
  CHECK(c.stats().token_fetches == 2);
}

TEST_CASE("a 401 forgets the token, fetches a new one and retries once") {
  emulator e;
  auto cfg = e.config();
  // The client's clock stands still, so it believes its token is fresh
  // while the emulator has let it expire.
  auto frozen = e.now();
  cfg.now_ms = [frozen] {
    return frozen;
  };
  graph::client c{cfg};
  graph::response out;
  graph::error err;
  REQUIRE(get_user(c, e.alex_id, out, err));
  e.advance(2h);
  INFO(err.describe());
  REQUIRE(get_user(c, e.alex_id, out, err));
  CHECK(out.status == 200);
  auto s = c.stats();
  CHECK(s.token_fetches == 2);
  CHECK(s.retries == 1);
  CHECK(s.requests == 5); // token, call, 401, token, call
}

TEST_CASE("a 401 after a fresh token is not retried again") {
  emulator e;
  graph::client c{e.config()};
  graph::response out;
  graph::error err;
  // A user of another tenant: Graph refuses the token there, every time.
  auto other = e.seed_tenant_with_users("fabrikam.example", 1);
  (void)other;
  REQUIRE_FALSE(get_user(c, "user0@fabrikam.example", out, err));
  CHECK(err.status == 401);
  CHECK(err.code == "InvalidAuthenticationToken");
  CHECK(err.attempts == 2);
  CHECK(c.stats().token_fetches == 2);
}

TEST_CASE("forget_token makes the next call fetch a token") {
  emulator e;
  graph::client c{e.config()};
  graph::response out;
  graph::error err;
  REQUIRE(get_user(c, e.alex_id, out, err));
  c.forget_token(tenant);
  REQUIRE(get_user(c, e.alex_id, out, err));
  CHECK(c.stats().token_fetches == 2);
}

TEST_CASE("a refused token request fails the call with the OAuth error") {
  emulator e;
  auto cfg = e.config();
  cfg.client_secret = "wrong";
  graph::client c{cfg};
  graph::response out;
  graph::error err;
  REQUIRE_FALSE(get_user(c, e.alex_id, out, err));
  CHECK(err.status == 401);
  CHECK(err.code == "invalid_client");
  CHECK(err.message.rfind("AADSTS7000215", 0) == 0);
  CHECK(err.attempts == 1);
}

// -- paging
// ----------------------------------------------------------------------

TEST_CASE("list_all follows @odata.nextLink across pages") {
  emulator e;
  e.seed_tenant_with_users("fabrikam.example", 25);
  graph::client c{e.config()};
  std::vector<std::string> items;
  graph::error err;
  INFO(err.describe());
  REQUIRE(c.list_all("fabrikam.example", "/users?$top=10&$select=id,mail",
                     items, err));
  REQUIRE(items.size() == 25);
  for (int i = 0; i < 25; ++i) {
    INFO(i);
    CHECK(items[static_cast<size_t>(i)].find("\"user" + std::to_string(i) + "@")
          == std::string::npos); // $select=id,mail: no userPrincipalName
  }
  CHECK(items[0].rfind("{\"mail\":null,\"id\":\"", 0) == 0);
  CHECK(c.stats().requests == 4); // token + 3 pages
}

TEST_CASE("list_page returns one page and the nextLink verbatim") {
  emulator e;
  e.seed_tenant_with_users("fabrikam.example", 25);
  graph::client c{e.config()};
  std::vector<std::string> items;
  std::string next;
  graph::error err;
  REQUIRE(c.list_page("fabrikam.example", "/users?$top=10", items, next, err));
  CHECK(items.size() == 10);
  REQUIRE(next.rfind(e.origin() + "/v1.0/users?$top=10&$skiptoken=", 0) == 0);
  std::vector<std::string> second;
  std::string after;
  REQUIRE(c.list_page("fabrikam.example", next, second, after, err));
  CHECK(second.size() == 10);
  CHECK(second[0] != items[0]);
  REQUIRE_FALSE(after.empty());
  std::vector<std::string> last;
  std::string none;
  REQUIRE(c.list_page("fabrikam.example", after, last, none, err));
  CHECK(last.size() == 5);
  CHECK(none.empty());
}

TEST_CASE("a link to another host or scheme is refused without sending") {
  emulator e;
  graph::client c{e.config()};
  std::vector<std::string> items;
  std::string next;
  graph::error err;
  auto port = e.origin().substr(e.origin().rfind(':'));
  for (std::string link :
       {"http://127.0.0.2" + port + "/v1.0/users",
        "https://127.0.0.1" + port + "/v1.0/users",
        std::string{"https://graph.microsoft.com/v1.0/users"},
        std::string{"ftp://127.0.0.1/v1.0/users"}}) {
    INFO(link);
    CHECK_FALSE(c.list_page(tenant, link, items, next, err));
    CHECK(err.code == "invalid_url");
    CHECK(err.status == 0);
  }
  CHECK(c.stats().requests == 0);
}

// -- retries
// ----------------------------------------------------------------------

TEST_CASE("429 answers are retried after Retry-After and succeed") {
  emulator e;
  e.faults(R"({"throttle_rate":0.3})");
  auto cfg = e.config();
  cfg.max_attempts = 10;
  graph::client c{cfg};
  auto started = std::chrono::steady_clock::now();
  // Calls until one was throttled (about one in three is).
  for (int i = 0; i < 40 && c.stats().throttled == 0; ++i) {
    graph::response out;
    graph::error err;
    INFO(err.describe());
    REQUIRE(get_user(c, e.alex_id, out, err));
    CHECK(out.status == 200);
  }
  auto s = c.stats();
  REQUIRE(s.throttled >= 1);
  CHECK(s.retries >= s.throttled);
  CHECK(seconds_since(started) >= 0.9 * static_cast<double>(s.throttled));
}

TEST_CASE("503 answers are retried after Retry-After and succeed") {
  emulator e;
  e.faults(R"({"error_rate":0.3})");
  auto cfg = e.config();
  cfg.max_attempts = 10;
  graph::client c{cfg};
  for (int i = 0; i < 40 && c.stats().retries == 0; ++i) {
    graph::response out;
    graph::error err;
    INFO(err.describe());
    REQUIRE(get_user(c, e.alex_id, out, err));
  }
  auto s = c.stats();
  CHECK(s.retries >= 1);
  CHECK(s.throttled == 0);
}

TEST_CASE("retries are bounded: a lasting outage fails after max_attempts") {
  emulator e;
  e.faults(R"({"error_rate":1})");
  auto cfg = e.config();
  cfg.max_attempts = 3;
  graph::client c{cfg};
  graph::response out;
  graph::error err;
  auto started = std::chrono::steady_clock::now();
  REQUIRE_FALSE(get_user(c, e.alex_id, out, err));
  CHECK(err.status == 503);
  CHECK(err.code == "ServiceUnavailable");
  CHECK(err.retry_after_s == 1);
  CHECK(err.attempts == 3);
  CHECK(err.describe()
        == "503 ServiceUnavailable: The service is temporarily unavailable. "
           "(after 3 attempts)");
  CHECK(seconds_since(started) >= 1.9); // two waits of Retry-After 1
  CHECK(c.stats().retries == 2);
}

TEST_CASE("a Retry-After beyond max_retry_after fails at once") {
  emulator e;
  e.faults(R"({"throttle_rate":1})");
  auto cfg = e.config();
  cfg.max_retry_after = 0s;
  graph::client c{cfg};
  graph::response out;
  graph::error err;
  REQUIRE_FALSE(get_user(c, e.alex_id, out, err));
  CHECK(err.status == 429);
  CHECK(err.code == "TooManyRequests");
  CHECK(err.attempts == 1);
  CHECK(err.retry_after_s == 1);
  CHECK(c.stats().throttled == 1);
}

TEST_CASE("transport failures back off and give up after max_attempts") {
  auto cfg = graph::config{};
  // Nothing listens on port 1 of loopback: every connect is refused.
  cfg.graph_base_url = "http://127.0.0.1:1/v1.0";
  cfg.login_base_url = "http://127.0.0.1:1";
  cfg.client_id = "x";
  cfg.client_secret = "y";
  cfg.max_attempts = 3;
  cfg.backoff_base = 10ms;
  cfg.backoff_max = 40ms;
  graph::client c{cfg};
  graph::response out;
  graph::error err;
  REQUIRE_FALSE(c.call(tenant, "", "GET", "/users", "", out, err));
  CHECK(err.status == 0);
  CHECK(err.code == "transport");
  CHECK(err.attempts == 3);
  CHECK_FALSE(err.message.empty());
  CHECK(c.stats().requests == 3);
}

TEST_CASE("a non-retriable 404 fails at once with Graph's error code") {
  emulator e;
  graph::client c{e.config()};
  graph::response out;
  graph::error err;
  REQUIRE_FALSE(get_user(c, "nobody@contoso.example", out, err));
  CHECK(err.status == 404);
  CHECK(err.code == "Request_ResourceNotFound");
  CHECK(err.message.find("nobody@contoso.example") != std::string::npos);
  CHECK(err.attempts == 1);
  CHECK(c.stats().requests == 2); // the token and the one call
  CHECK(c.stats().retries == 0);
}

TEST_CASE("plain http to a host other than loopback is refused") {
  auto cfg = graph::config{};
  cfg.graph_base_url = "http://graph.example.com/v1.0";
  cfg.login_base_url = "http://login.example.com";
  cfg.client_id = "x";
  graph::client c{cfg};
  graph::response out;
  graph::error err;
  REQUIRE_FALSE(c.call(tenant, "", "GET", "/users", "", out, err));
  CHECK(err.code == "insecure_url");
  CHECK(err.message.find("graph.example.com") != std::string::npos);
  graph::identity who;
  REQUIRE_FALSE(c.redeem_code("code", "https://crm.example/cb", "n", who, err));
  CHECK(err.code == "insecure_url");
  CHECK(c.stats().requests == 0);
}

// -- the mailbox budget
// ----------------------------------------------------------------

TEST_CASE("16 threads on one mailbox keep within its 4 requests in flight") {
  emulator e;
  e.faults(R"({"latency_ms":20})");
  graph::client c{e.config()};
  std::atomic<int> ok{0};
  crmsync::test::thread_guard threads;
  for (int i = 0; i < 16; ++i)
    threads.spawn([&] {
      for (int j = 0; j < 4; ++j) {
        graph::error err;
        if (get_calendars(c, e.alex_id, err))
          ++ok;
      }
    });
  threads.join();
  CHECK(ok == 64);
  auto s = c.stats();
  CHECK(s.throttled == 0); // the emulator never refused one
  CHECK(s.retries == 0);
  CHECK(s.max_in_flight_per_mailbox == 4);
}

TEST_CASE("without the budget the same load is refused by the emulator") {
  // Shows what the previous test guards against.
  emulator e;
  e.faults(R"({"latency_ms":20})");
  auto cfg = e.config();
  cfg.mailbox_concurrency = 16;
  cfg.max_attempts = 1;
  graph::client c{cfg};
  std::atomic<int> refused{0};
  crmsync::test::thread_guard threads;
  for (int i = 0; i < 16; ++i)
    threads.spawn([&] {
      for (int j = 0; j < 4; ++j) {
        graph::error err;
        if (!get_calendars(c, e.alex_id, err)
            && err.code == "ApplicationThrottled")
          ++refused;
      }
    });
  threads.join();
  CHECK(refused > 0);
  CHECK(c.stats().max_in_flight_per_mailbox > 4);
}

TEST_CASE("different mailboxes proceed in parallel") {
  emulator e;
  e.faults(R"({"latency_ms":50})");
  graph::client c{e.config()};
  std::atomic<int> ok{0};
  crmsync::test::thread_guard threads;
  for (int i = 0; i < 16; ++i)
    threads.spawn([&, i] {
      auto& user = i % 2 == 0 ? e.alex_id : e.bob_id;
      for (int j = 0; j < 3; ++j) {
        graph::error err;
        if (get_calendars(c, user, err))
          ++ok;
      }
    });
  threads.join();
  CHECK(ok == 48);
  auto s = c.stats();
  CHECK(s.throttled == 0);
  CHECK(s.max_in_flight_per_mailbox <= 4);
  CHECK(s.max_in_flight > 4); // both mailboxes at once
}

TEST_CASE("a full mailbox window makes the next call wait, not fail") {
  test::emulator_options opts;
  opts.mailbox_requests_per_window = 5;
  opts.mailbox_window = 2s;
  emulator e{opts};
  auto cfg = e.config();
  cfg.mailbox_requests_per_window = 5;
  cfg.mailbox_window = 2s;
  graph::client c{cfg};
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    graph::error err;
    INFO(err.describe());
    REQUIRE(get_calendars(c, e.alex_id, err));
  }
  CHECK(seconds_since(started) < 1.5);
  graph::error err;
  INFO(err.describe());
  REQUIRE(get_calendars(c, e.alex_id, err));
  CHECK(seconds_since(started) >= 1.9);
  // Another mailbox has its own window.
  auto before_bob = std::chrono::steady_clock::now();
  REQUIRE(get_calendars(c, e.bob_id, err));
  CHECK(seconds_since(before_bob) < 1.0);
  auto s = c.stats();
  CHECK(s.throttled == 0);
  CHECK(s.retries == 0);
}

// -- $batch
// ----------------------------------------------------------------------

TEST_CASE("a $batch of more than 20 requests is refused without sending") {
  emulator e;
  graph::client c{e.config()};
  std::vector<graph::batch_request> requests;
  for (int i = 0; i < 25; ++i)
    requests.push_back({std::to_string(i), "GET", "/users/" + e.alex_id, ""});
  std::vector<graph::batch_response> out;
  graph::error err;
  REQUIRE_FALSE(c.batch(tenant, e.alex_id, requests, out, err));
  CHECK(err.code == "invalid_request");
  CHECK(err.message.find("20") != std::string::npos);
  CHECK(out.empty());
  CHECK(c.stats().requests == 0);
}

TEST_CASE("a $batch with duplicate ids or a non-JSON body is refused") {
  emulator e;
  graph::client c{e.config()};
  std::vector<graph::batch_response> out;
  graph::error err;
  CHECK_FALSE(c.batch(tenant, e.alex_id,
                      {{"a", "GET", "/users", ""}, {"A", "GET", "/users", ""}},
                      out, err));
  CHECK(err.code == "invalid_request");
  CHECK_FALSE(c.batch(tenant, e.alex_id,
                      {{"a", "POST", "/users/x/calendars", "{not json"}}, out,
                      err));
  CHECK(err.code == "invalid_request");
  CHECK(c.stats().requests == 0);
}

TEST_CASE("a $batch answers every request with its own status, in order") {
  emulator e;
  graph::client c{e.config()};
  std::vector<graph::batch_request> requests{
      {"user", "GET", "/users/" + e.alex_id, ""},
      {"missing", "GET", "/users/nobody@contoso.example", ""},
      {"create", "POST", "/users/" + e.alex_id + "/calendars",
       R"({"name":"CRM \"sync\""})"}};
  std::vector<graph::batch_response> out;
  graph::error err;
  INFO(err.describe());
  REQUIRE(c.batch(tenant, e.alex_id, requests, out, err));
  REQUIRE(out.size() == 3);
  CHECK(out[0].id == "user");
  CHECK(out[0].status == 200);
  CHECK(out[0].body.find("\"userPrincipalName\":\"alex@contoso.example\"")
        != std::string::npos);
  CHECK(out[1].id == "missing");
  CHECK(out[1].status == 404);
  CHECK(out[1].body.find("Request_ResourceNotFound") != std::string::npos);
  CHECK(out[2].id == "create");
  CHECK(out[2].status == 201);
  CHECK(out[2].body.find(R"("name":"CRM \"sync\"")") != std::string::npos);
  CHECK(c.stats().requests == 2); // token + one $batch
}

TEST_CASE("$batch items answered 429 are sent again after their Retry-After") {
  // The emulator allows 5 mailbox requests per 2 s: of 8 items, 3 are 429
  // with Retry-After 2 inside the 200 batch, and go through on the resend.
  test::emulator_options opts;
  opts.mailbox_requests_per_window = 5;
  opts.mailbox_window = 2s;
  emulator e{opts};
  graph::client c{e.config()};
  std::vector<graph::batch_request> requests;
  for (int i = 0; i < 8; ++i)
    requests.push_back({"r" + std::to_string(i), "GET",
                        "/users/" + e.alex_id + "/calendars", ""});
  std::vector<graph::batch_response> out;
  graph::error err;
  auto started = std::chrono::steady_clock::now();
  INFO(err.describe());
  REQUIRE(c.batch(tenant, e.alex_id, requests, out, err));
  REQUIRE(out.size() == 8);
  for (size_t i = 0; i < out.size(); ++i) {
    INFO(i << " " << out[i].body);
    CHECK(out[i].id == "r" + std::to_string(i));
    CHECK(out[i].status == 200);
  }
  auto s = c.stats();
  CHECK(s.throttled == 3);
  CHECK(s.retries == 1);
  CHECK(s.requests == 3); // token + two batches
  CHECK(seconds_since(started) >= 1.9);
}

// -- request headers
// ----------------------------------------------------------------

TEST_CASE("call passes the caller's headers: If-Match and Prefer") {
  emulator e;
  graph::client c{e.config()};
  graph::response out;
  graph::error err;
  INFO(err.describe());
  REQUIRE(
      c.call(tenant, e.alex_id, "POST", "/users/" + e.alex_id + "/events",
             R"({"subject":"Kick-off",)"
             R"("start":{"dateTime":"2026-12-01T10:00:00","timeZone":"UTC"},)"
             R"("end":{"dateTime":"2026-12-01T11:00:00","timeZone":"UTC"}})",
             {{"Prefer", "IdType=\"ImmutableId\""}}, out, err));
  CHECK(out.status == 201);
  bool applied = false;
  for (auto& [name, value] : out.headers)
    applied = applied
              || (name == "Preference-Applied"
                  && value == "IdType=\"ImmutableId\"");
  CHECK(applied);
  auto at = out.body.find("\"id\":\"") + 6;
  auto id = out.body.substr(at, out.body.find('"', at) - at);
  REQUIRE_FALSE(c.call(
      tenant, e.alex_id, "PATCH", "/users/" + e.alex_id + "/events/" + id,
      R"({"subject":"Moved"})", {{"If-Match", "W/\"stale\""}}, out, err));
  CHECK(err.status == 412);
  CHECK(err.code == "ErrorIrresolvableConflict");
  CHECK(err.attempts == 1);
}
