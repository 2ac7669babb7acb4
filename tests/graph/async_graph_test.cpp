// graph::client's asynchronous calls against the in-process graph-emulator
// at injected latency: calls are carried by the client's I/O threads (the
// process gains no thread per call in flight), each callback runs once with
// its own answer, a first burst for one tenant shares one token fetch, the
// mailbox budget queues calls without a thread, and shutdown ends queued
// calls and retry pauses at once.
#include <catch2/catch.hpp>

#include <dirent.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "graph/client.hpp"
#include "tests/graph/fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync;
using graph_test::emulator;
using namespace std::chrono_literals;

namespace {

/// Threads of this process now.
size_t thread_count() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (auto* entry = ::readdir(d))
      if (entry->d_name[0] != '.')
        ++n;
    ::closedir(d);
  }
  return n;
}

/// What the callbacks of a set of calls saw, from the I/O threads.
struct outcomes {
  std::mutex mtx;
  std::vector<graph::result<graph::response>> seen;
  std::atomic<size_t> count{0};

  graph::callback<graph::response> collect() {
    return [this](graph::result<graph::response> r) {
      {
        std::lock_guard<std::mutex> guard{mtx};
        seen.push_back(std::move(r));
      }
      ++count;
    };
  }

  size_t ok() {
    std::lock_guard<std::mutex> guard{mtx};
    size_t n = 0;
    for (auto& r : seen)
      n += r.ok ? 1 : 0;
    return n;
  }

  size_t failed_with(const std::string& code) {
    std::lock_guard<std::mutex> guard{mtx};
    size_t n = 0;
    for (auto& r : seen)
      n += !r.ok && r.failure.code == code ? 1 : 0;
    return n;
  }
};

graph::call_spec get_calendars(const std::string& tenant,
                               const std::string& user) {
  graph::call_spec c;
  c.tenant = tenant;
  c.mailbox = user;
  c.path_or_url = "/users/" + user + "/calendars";
  return c;
}

} // namespace

TEST_CASE("async Graph calls at 200 ms latency are all in flight on the "
          "client's two I/O threads",
          "[graph][async]") {
  emulator e;
  const auto tenant = e.seed_tenant_with_users("fabrikam.example", 50);
  auto cfg = e.config();
  cfg.io_threads = 2;
  graph::client c{cfg};
  // The token first, so that every call below is a mailbox call.
  graph::response res;
  graph::error err;
  REQUIRE(c.call(tenant, "", "GET", "/users?$top=50&$select=id", "", res, err));
  std::vector<std::string> users;
  for (size_t at = 0;
       (at = res.body.find("\"id\":\"", at)) != std::string::npos;) {
    at += 6;
    users.push_back(res.body.substr(at, res.body.find('"', at) - at));
  }
  REQUIRE(users.size() == 50);
  e.faults(R"({"latency_ms":200})");

  const auto threads_before = thread_count();
  outcomes out;
  size_t most_threads = threads_before;
  constexpr size_t per_user = 4;
  for (auto& u : users)
    for (size_t k = 0; k < per_user; ++k)
      c.start(get_calendars(tenant, u), out.collect());
  const size_t n = users.size() * per_user;
  CHECK(test::eventually(
      [&] {
        most_threads = std::max(most_threads, thread_count());
        return out.count.load() == n;
      },
      30s, 5ms));
  CHECK(out.ok() == n);
  // 200 calls waited 200 ms each at the same time: the client's own two
  // I/O threads (started with it) carried them all.
  CHECK(most_threads == threads_before);
  auto s = c.stats();
  CHECK(s.max_in_flight >= n / 2);
  CHECK(s.max_in_flight_per_mailbox == per_user);
}

TEST_CASE("each async call's callback runs once, with its own answer",
          "[graph][async]") {
  emulator e;
  graph::client c{e.config()};
  e.faults(R"({"latency_ms":30,"jitter_ms":20})");
  const std::vector<std::string> ids{e.alex_id, e.bob_id, emulator::admin_id};
  std::mutex mtx;
  std::vector<std::pair<std::string, std::string>> answers; // asked, body
  std::atomic<size_t> done{0};
  constexpr size_t rounds = 20;
  for (size_t i = 0; i < rounds; ++i)
    for (auto& id : ids) {
      graph::call_spec call;
      call.tenant = emulator::contoso;
      call.path_or_url = "/users/" + id + "?$select=id";
      c.start(call, [&, id](graph::result<graph::response> r) {
        std::lock_guard<std::mutex> guard{mtx};
        answers.emplace_back(id, r.ok ? r.value.body : r.failure.describe());
        ++done;
      });
    }
  REQUIRE(test::eventually([&] { return done.load() == rounds * ids.size(); },
                           20s));
  // Nothing more arrives once every call has had its answer.
  CHECK_FALSE(test::eventually(
      [&] { return done.load() > rounds * ids.size(); }, 300ms));
  std::lock_guard<std::mutex> guard{mtx};
  for (auto& [asked, body] : answers) {
    INFO(body);
    CHECK(body.find("\"id\":\"" + asked + "\"") != std::string::npos);
  }
  // 60 calls for one tenant began before its token arrived: one fetch.
  CHECK(c.stats().token_fetches == 1);
}

TEST_CASE("calls queued behind a mailbox's budget end at once when the "
          "client shuts down",
          "[graph][async]") {
  emulator e;
  auto cfg = e.config();
  cfg.mailbox_concurrency = 2;
  graph::client c{cfg};
  graph::response res;
  graph::error err;
  REQUIRE(c.call(emulator::contoso, "", "GET", "/users?$top=1", "", res, err));
  e.faults(R"({"latency_ms":1500})");
  outcomes out;
  for (int i = 0; i < 6; ++i)
    c.start(get_calendars(emulator::contoso, e.alex_id), out.collect());
  // Two are on the wire, four wait for a slot, and no thread waits with
  // them.
  REQUIRE(test::eventually([&] { return c.stats().max_in_flight == 2; }, 5s));
  CHECK(out.count.load() == 0);
  c.shutdown();
  // The four waiting ones end now, long before the latency is over.
  CHECK(test::eventually([&] { return out.failed_with("shutting_down") == 4; },
                         1s, 5ms));
  // The two on the wire end with their answers.
  CHECK(test::eventually([&] { return out.count.load() == 6; }, 10s));
  CHECK(out.ok() == 2);
}

TEST_CASE("a retry pause is a timer that shutdown ends at once",
          "[graph][async]") {
  emulator e;
  auto cfg = e.config();
  cfg.backoff_base = 20s; // a 503 without Retry-After would wait long
  cfg.backoff_max = 20s;
  graph::client c{cfg};
  graph::response res;
  graph::error err;
  REQUIRE(c.call(emulator::contoso, "", "GET", "/users?$top=1", "", res, err));
  // Every answer is a 429 with Retry-After: 1 s at least.
  e.faults(R"({"throttle_rate":1})");
  outcomes out;
  c.start(get_calendars(emulator::contoso, e.alex_id), out.collect());
  REQUIRE(test::eventually([&] { return c.stats().throttled >= 1; }, 5s));
  CHECK(out.count.load() == 0); // pausing before its retry
  c.shutdown();
  CHECK(test::eventually([&] { return out.failed_with("shutting_down") == 1; },
                         500ms, 5ms));
}

TEST_CASE("a client destroyed with calls in flight and queued runs every "
          "callback once before it is gone",
          "[graph][async]") {
  emulator e;
  outcomes out;
  {
    auto cfg = e.config();
    cfg.mailbox_concurrency = 1;
    graph::client c{cfg};
    graph::response res;
    graph::error err;
    REQUIRE(
        c.call(emulator::contoso, "", "GET", "/users?$top=1", "", res, err));
    e.faults(R"({"latency_ms":3000})");
    for (int i = 0; i < 3; ++i)
      c.start(get_calendars(emulator::contoso, e.bob_id), out.collect());
    REQUIRE(test::eventually([&] { return c.stats().max_in_flight == 1; }, 5s));
  }
  CHECK(out.count.load() == 3);
  CHECK(out.failed_with("shutting_down") >= 2);
}
