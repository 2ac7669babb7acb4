// Time zones in dateTimeTimeZone and Prefer: outlook.timezone, and the
// fault-injection control API.
#include <catch2/catch.hpp>
#include <chrono>

#include "tests/emulator/harness.hpp"

using namespace crmsync::emulator_test;

namespace {

std::string zoned_body(std::string_view subject, std::string_view start,
                       std::string_view end, std::string_view zone,
                       bool all_day = false) {
  return std::string{R"({"subject":")"} + std::string{subject}
         + R"(","isAllDay":)" + (all_day ? "true" : "false")
         + R"(,"start":{"dateTime":")" + std::string{start}
         + R"(","timeZone":")" + std::string{zone} + R"("},"end":{"dateTime":")"
         + std::string{end} + R"(","timeZone":")" + std::string{zone}
         + R"("}})";
}

} // namespace

TEST_CASE_METHOD(contoso, "zones: Windows zone names follow daylight saving",
                 "[emulator][zones]") {
  auto summer = create_event(events_path(admin_id),
                             zoned_body("summer", "2026-07-01T09:00:00",
                                        "2026-07-01T10:00:00",
                                        "Pacific Standard Time"));
  // Pacific daylight time is UTC-7; answers to writes are in UTC.
  CHECK(summer.str("/start/dateTime") == "2026-07-01T16:00:00.0000000");
  CHECK(summer.str("/start/timeZone") == "UTC");
  CHECK(summer.str("/originalStartTimeZone") == "Pacific Standard Time");
  auto winter = create_event(events_path(admin_id),
                             zoned_body("winter", "2026-01-15T09:00:00",
                                        "2026-01-15T10:00:00",
                                        "Pacific Standard Time"));
  CHECK(winter.str("/start/dateTime") == "2026-01-15T17:00:00.0000000");
  auto iana = create_event(events_path(admin_id),
                           zoned_body("berlin", "2026-07-01T09:00:00",
                                      "2026-07-01T10:00:00", "Europe/Berlin"));
  CHECK(iana.str("/start/dateTime") == "2026-07-01T07:00:00.0000000");
}

TEST_CASE_METHOD(contoso, "zones: reads honour Prefer outlook.timezone",
                 "[emulator][zones]") {
  auto e = create_event(
      events_path(admin_id),
      event_body("utc", "2026-07-01T16:00:00", "2026-07-01T17:00:00"));
  auto path = event_path(admin_id, e.str("/id"));
  auto r = graph("GET", path, tok, {},
                 {{"Prefer", R"(outlook.timezone="W. Europe Standard Time")"}});
  REQUIRE(r.status == 200);
  CHECK(r.str("/start/dateTime") == "2026-07-01T18:00:00.0000000");
  CHECK(r.str("/start/timeZone") == "W. Europe Standard Time");
  CHECK(r.header("Preference-Applied")
        == R"(outlook.timezone="W. Europe Standard Time")");
  // Without the header (or with an unknown zone) reads are in UTC.
  auto plain = get(path, tok);
  CHECK(plain.str("/start/dateTime") == "2026-07-01T16:00:00.0000000");
  CHECK(plain.header("Preference-Applied").empty());
  auto unknown
      = graph("GET", path, tok, {},
              {{"Prefer", R"(outlook.timezone="Mars Standard Time")"}});
  CHECK(unknown.str("/start/timeZone") == "UTC");
}

TEST_CASE_METHOD(contoso, "zones: all-day events are midnight in their zone",
                 "[emulator][zones]") {
  auto tokyo = create_event(events_path(admin_id),
                            zoned_body("holiday", "2026-07-02T00:00:00",
                                       "2026-07-03T00:00:00",
                                       "Tokyo Standard Time", true));
  CHECK(tokyo.str("/start/dateTime") == "2026-07-01T15:00:00.0000000");
  check_error(
      post(events_path(admin_id), tok,
           zoned_body("bad", "2026-07-02T09:00:00", "2026-07-03T00:00:00",
                      "Tokyo Standard Time", true)),
      400, "ErrorInvalidRequest");
}

TEST_CASE_METHOD(contoso, "faults: throttling and outages on demand",
                 "[emulator][faults]") {
  auto users = "/v1.0/users";
  REQUIRE(get(users, tok).status == 200);
  REQUIRE(send("POST", "/_emulator/faults", R"({"throttle_rate":1})").status
          == 200);
  auto throttled = get(users, tok);
  check_error(throttled, 429, "TooManyRequests");
  CHECK(throttled.header("Retry-After") == "1");
  REQUIRE(
      send("POST", "/_emulator/faults", R"({"throttle_rate":0,"error_rate":1})")
          .status
      == 200);
  auto down = get(users, tok);
  check_error(down, 503, "ServiceUnavailable");
  CHECK(down.header("Retry-After") == "1");
  // The control API itself is never faulted, and reset clears the faults.
  auto faults = send("GET", "/_emulator/faults");
  REQUIRE(faults.status == 200);
  CHECK(faults.json("/error_rate").rfind("1", 0) == 0);
  REQUIRE(send("POST", "/_emulator/reset").status == 204);
  CHECK(send("GET", "/_emulator/faults").json("/error_rate").rfind("0", 0)
        == 0);
}

TEST_CASE_METHOD(contoso,
                 "faults: a refused event and a mailbox without Exchange "
                 "Online on demand",
                 "[emulator][faults]") {
  REQUIRE(send("POST", "/_emulator/faults", R"({"refuse_text":"NOPE"})").status
          == 200);
  check_error(post(events_path(admin_id), tok, event_body("NOPE review")), 400,
              "ErrorInvalidProperty");
  auto fine = create_event(events_path(admin_id), event_body("fine"));
  // An update with the text is refused too, with the status and code asked.
  REQUIRE(send("POST", "/_emulator/faults",
               R"({"refuse_status":403,"refuse_code":"ErrorAccessDenied"})")
              .status
          == 200);
  check_error(patch(event_path(admin_id, fine.str("/id")), tok,
                    R"({"subject":"NOPE again"})"),
              403, "ErrorAccessDenied");
  CHECK(get(event_path(admin_id, fine.str("/id")), tok).str("/subject")
        == "fine");
  for (const char* body :
       {R"({"refuse_text":1})", R"({"refuse_code":false})",
        R"({"refuse_status":200})", R"({"mailbox_disabled_rate":2})"}) {
    INFO(body);
    CHECK(send("POST", "/_emulator/faults", body).status == 400);
  }
  REQUIRE(send("POST", "/_emulator/faults",
               R"({"refuse_text":"","mailbox_disabled_rate":1})")
              .status
          == 200);
  check_error(get(events_path(admin_id), tok), 404,
              "MailboxNotEnabledForRESTAPI");
  auto counters = send("GET", "/_emulator/counters");
  CHECK(counters.u64("/faults/refused_events") == 2);
  CHECK(counters.u64("/faults/mailbox_disabled") == 1);
  REQUIRE(send("POST", "/_emulator/reset").status == 204);
  CHECK(send("GET", "/_emulator/faults").str("/refuse_text") == "");
}

TEST_CASE_METHOD(contoso, "faults: latency holds answers back",
                 "[emulator][faults]") {
  REQUIRE(send("POST", "/_emulator/faults", R"({"latency_ms":150})").status
          == 200);
  auto t0 = std::chrono::steady_clock::now();
  auto r = get("/v1.0/users", tok);
  auto waited = std::chrono::steady_clock::now() - t0;
  REQUIRE(r.status == 200);
  CHECK(waited >= std::chrono::milliseconds(150));
  REQUIRE(send("POST", "/_emulator/faults", R"({"latency_ms":0})").status
          == 200);
}

TEST_CASE_METHOD(contoso, "faults: bad settings are refused and change nothing",
                 "[emulator][faults]") {
  for (const char* body : {R"({"error_rate":1.5})", R"({"throttle_rate":-1})",
                           R"({"latency_ms":"slow"})", R"({"lightning":1})",
                           "[", R"({"error_rate":0.5,"nope":1})"}) {
    INFO(body);
    auto r = send("POST", "/_emulator/faults", body);
    CHECK(r.status == 400);
  }
  CHECK(send("GET", "/_emulator/faults").json("/error_rate").rfind("0", 0)
        == 0);
  CHECK(get("/v1.0/users", tok).status == 200);
}

TEST_CASE_METHOD(contoso, "faults: notification delay is a setting in ms",
                 "[emulator][faults]") {
  auto r
      = send("POST", "/_emulator/faults", R"({"notification_delay_ms":2500})");
  REQUIRE(r.status == 200);
  CHECK(r.i64("/notification_delay_ms") == 2500);
  CHECK(send("POST", "/_emulator/faults", R"({"notification_delay_ms":-1})")
            .status
        == 400);
  CHECK(send("GET", "/_emulator/faults").i64("/notification_delay_ms") == 2500);
}

TEST_CASE_METHOD(contoso, "ids: Prefer IdType ImmutableId is acknowledged",
                 "[emulator][ids]") {
  auto asked = graph("GET", "/v1.0/users", tok, {},
                     {{"Prefer", R"(IdType="ImmutableId")"}});
  REQUIRE(asked.status == 200);
  CHECK(asked.header("Preference-Applied") == R"(IdType="ImmutableId")");
  auto plain = get("/v1.0/users", tok);
  CHECK(plain.header("Preference-Applied").empty());
}
