// graph-emulator's Outlook limit per (app, mailbox) pair (GRAPH-FACTS §6),
// configured down to 5 requests per 60 s: the 6th mailbox request is
// 429 ApplicationThrottled with Retry-After until the oldest request of
// the window ages out on the injected clock. Other mailboxes, other apps
// and directory requests are not limited; inside $batch the items over
// the limit are 429 while the batch is 200.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/emulator/harness.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::emulator_test;

namespace {

emulator_options five_a_minute() {
  emulator_options o;
  o.mailbox_requests_per_window = 5;
  o.mailbox_window = std::chrono::seconds{60};
  return o;
}

class throttled : public contoso {
public:
  throttled() : contoso(five_a_minute()) {}

  /// A mailbox request that must get through.
  void use(std::string_view user, const std::string& token) {
    E2E_REQUIRE_STATUS(get(calendars_path(user), token), 200);
  }

  /// Outlook's answer beyond the limit, with Retry-After in seconds.
  void check_throttled(const api_response& r, int retry_after) {
    check_error(r, 429, "ApplicationThrottled");
    CHECK(r.header("Retry-After") == std::to_string(retry_after));
  }
};

} // namespace

TEST_CASE_METHOD(throttled,
                 "throttling: the 6th mailbox request in a window is 429",
                 "[emulator][throttling]") {
  // Different routes count alike.
  auto cal = create_calendar("CRM");
  auto ev = create_event(calendar_events_path(admin_id, cal), event_body("x"));
  E2E_REQUIRE_STATUS(get(event_path(admin_id, ev.str("/id")), tok), 200);
  E2E_REQUIRE_STATUS(get(events_path(admin_id), tok), 200);
  E2E_REQUIRE_STATUS(
      get(user_path(admin_id)
              + "/calendarView?startDateTime="
                "2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z",
          tok),
      200);

  check_throttled(get(calendars_path(admin_id), tok), 60);
  // Writes are refused too, and change nothing.
  check_throttled(post(events_path(admin_id), tok, event_body("refused")), 60);
  check_throttled(patch(event_path(admin_id, ev.str("/id")), tok,
                        R"({"subject":"refused"})"),
                  60);
  check_throttled(del(event_path(admin_id, ev.str("/id")), tok), 60);
  CHECK(state().i64("/events") == 1);
  // The mailbox is addressed by UPN just the same.
  check_throttled(get(calendars_path("Admin@contoso.example"), tok), 60);

  // Directory requests are not mailbox requests.
  E2E_REQUIRE_STATUS(get("/v1.0/users", tok), 200);
  E2E_REQUIRE_STATUS(get(user_path(admin_id), tok), 200);

  // Retry-After counts down with the clock.
  advance(30s);
  check_throttled(get(calendars_path(admin_id), tok), 30);
  advance(30s - 1ms);
  check_throttled(get(calendars_path(admin_id), tok), 1);
  advance(1ms);
  auto after = get(event_path(admin_id, ev.str("/id")), tok);
  E2E_REQUIRE_STATUS(after, 200);
  CHECK(after.str("/subject") == "x");
}

TEST_CASE_METHOD(throttled, "throttling: the window slides",
                 "[emulator][throttling]") {
  for (int i = 0; i < 3; ++i)
    use(admin_id, tok);
  advance(20s);
  use(admin_id, tok);
  use(admin_id, tok);
  // Full: the oldest three age out 40 s from now.
  check_throttled(get(calendars_path(admin_id), tok), 40);
  // Refused requests do not count: many of them change nothing.
  for (int i = 0; i < 10; ++i)
    check_throttled(get(calendars_path(admin_id), tok), 40);
  advance(40s);
  // Three places are free; the later two are still in the window.
  for (int i = 0; i < 3; ++i)
    use(admin_id, tok);
  check_throttled(get(calendars_path(admin_id), tok), 20);
  advance(20s);
  use(admin_id, tok);
  use(admin_id, tok);
  check_throttled(get(calendars_path(admin_id), tok), 40);
}

TEST_CASE_METHOD(throttled,
                 "throttling: other mailboxes and other apps keep their own "
                 "budget",
                 "[emulator][throttling]") {
  for (int i = 0; i < 5; ++i)
    use(admin_id, tok);
  check_throttled(get(calendars_path(admin_id), tok), 60);

  // Another mailbox, same app.
  for (int i = 0; i < 5; ++i)
    use(alex_id, tok);
  check_throttled(get(calendars_path(alex_id), tok), 60);

  // Another app, same mailbox.
  seed_app("outlook-person", "pw", R"(["contoso.example"])");
  auto person = token("contoso.example", "outlook-person", "pw");
  for (int i = 0; i < 5; ++i)
    use(admin_id, person);
  check_throttled(get(calendars_path(admin_id), person), 60);

  // The same app with a fresh token is the same app.
  auto again = token("contoso.example", crm_client, crm_secret);
  check_throttled(get(calendars_path(admin_id), again), 60);
}

TEST_CASE_METHOD(throttled,
                 "throttling: inside $batch the items over the limit are 429",
                 "[emulator][throttling][batch]") {
  use(admin_id, tok);
  use(admin_id, tok);
  std::string body = R"({"requests":[)";
  for (int i = 1; i <= 5; ++i)
    body += R"({"id":"a)" + std::to_string(i)
            + R"(","method":"GET","url":"/users/)" + std::string{admin_id}
            + R"(/calendars"},)";
  body += R"({"id":"alex","method":"GET","url":"/users/)" + alex_id
          + R"(/calendars"},)";
  body += R"({"id":"dir","method":"GET","url":"/users"}]})";
  auto r = post("/v1.0/$batch", tok, body);
  E2E_REQUIRE_STATUS(r, 200);
  REQUIRE(r.size("/responses") == 7);
  for (size_t i = 0; i < 7; ++i) {
    auto p = "/responses/" + std::to_string(i);
    auto id = r.str(p + "/id");
    INFO("item " << id << ": " << r.json(p));
    auto status = r.i64(p + "/status");
    if (id == "a1" || id == "a2" || id == "a3" || id == "alex" || id == "dir") {
      CHECK(status == 200);
      CHECK_FALSE(r.has(p + "/headers/Retry-After"));
    } else {
      CHECK(status == 429);
      CHECK(r.str(p + "/body/error/code") == "ApplicationThrottled");
      CHECK(r.str(p + "/headers/Retry-After") == "60");
    }
  }
  // The batch request itself is not a mailbox request.
  advance(60s);
  E2E_REQUIRE_STATUS(post("/v1.0/$batch", tok, R"({"requests":[]})"), 200);
  use(admin_id, tok);
}

TEST_CASE_METHOD(contoso,
                 "throttling: at most 4 requests in flight per mailbox",
                 "[emulator][throttling]") {
  // Latency keeps requests in flight long enough to overlap.
  REQUIRE(send("POST", "/_emulator/faults", R"({"latency_ms":1500})").status
          == 200);
  std::vector<int> statuses(6, 0);
  crmsync::test::thread_guard callers;
  for (size_t i = 0; i < statuses.size(); ++i)
    callers.spawn([&, i] {
      crmsync::http::client c{"127.0.0.1", port(), std::chrono::seconds(10)};
      crmsync::http::client_response res;
      std::string err;
      if (c.request("GET", calendars_path(admin_id), "",
                    {{"Authorization", "Bearer " + tok}}, res, err))
        statuses[i] = res.status;
    });
  callers.join();
  int ok = 0, throttled = 0;
  for (int st : statuses) {
    ok += st == 200;
    throttled += st == 429;
  }
  CHECK(ok == 4);
  CHECK(throttled == 2);
  // Once the answers are out, the slots are free again.
  REQUIRE(send("POST", "/_emulator/faults", R"({"latency_ms":0})").status
          == 200);
  CHECK(get(calendars_path(admin_id), tok).status == 200);
}
