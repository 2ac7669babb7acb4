// graph-emulator's calendarView (GRAPH-FACTS §3.1): the events of one
// calendar that overlap [startDateTime, endDateTime), ordered by start,
// 10 a page by default and followed through @odata.nextLink; the default
// calendar at /users/{u}/calendarView.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "http/url.hpp"
#include "tests/emulator/harness.hpp"

using namespace crmsync::emulator_test;

namespace {

/// The window of these tests: the whole of 2026-12-01 UTC.
const std::string december_1st = "startDateTime=2026-12-01T00:00:00Z"
                                 "&endDateTime=2026-12-02T00:00:00Z";

class calendar_view : public contoso {
public:
  std::string view_path(std::string_view cal = {}) {
    return cal.empty() ? user_path(admin_id) + "/calendarView"
                       : calendar_path(admin_id, cal) + "/calendarView";
  }

  std::string create(std::string_view target, std::string_view subject,
                     std::string_view start, std::string_view end) {
    return create_event(target, event_body(subject, start, end)).str("/id");
  }
};

} // namespace

TEST_CASE_METHOD(calendar_view,
                 "calendarView: only events overlapping the window",
                 "[emulator][calendarView]") {
  auto def = events_path(admin_id);
  // Created out of start order: the view sorts by start.
  auto inside
      = create(def, "inside", "2026-12-01T10:00:00", "2026-12-01T11:00:00");
  auto before = create(def, "ends at the window's start", "2026-11-30T22:00:00",
                       "2026-12-01T00:00:00");
  auto straddle_start = create(def, "straddles the start",
                               "2026-11-30T23:00:00", "2026-12-01T01:00:00");
  auto after = create(def, "starts at the window's end", "2026-12-02T00:00:00",
                      "2026-12-02T01:00:00");
  auto straddle_end = create(def, "straddles the end", "2026-12-01T23:30:00",
                             "2026-12-02T00:30:00");
  auto spanning = create(def, "spans the window", "2026-11-30T00:00:00",
                         "2026-12-03T00:00:00");
  auto instant = create(def, "zero length at the start", "2026-12-01T00:00:00",
                        "2026-12-01T00:00:00");
  auto cal = create_calendar("CRM");
  auto elsewhere = create(calendar_events_path(admin_id, cal), "other calendar",
                          "2026-12-01T12:00:00", "2026-12-01T13:00:00");
  (void)before;
  (void)after;
  const std::vector<std::string> expected{spanning, straddle_start, instant,
                                          inside, straddle_end};

  auto def_id = default_calendar_id(admin_id);
  for (std::string target : {view_path(), view_path(def_id)}) {
    INFO("GET " << target);
    auto r = get(target + "?" + december_1st, tok);
    E2E_REQUIRE_STATUS(r, 200);
    CHECK_FALSE(r.has("/@odata.nextLink"));
    CHECK(ids_of({r}) == expected);
    CHECK(r.str("/value/0/subject") == "spans the window");
    CHECK(r.str("/value/0/start/dateTime") == "2026-11-30T00:00:00.0000000");
    CHECK(r.str("/value/0/start/timeZone") == "UTC");
    CHECK_FALSE(r.str("/value/0/changeKey").empty());
  }
  // Another calendar's view holds only its own events.
  auto other = get(view_path(cal) + "?" + december_1st, tok);
  E2E_REQUIRE_STATUS(other, 200);
  CHECK(ids_of({other}) == std::vector<std::string>{elsewhere});

  // A window given with an offset, or without one (read as UTC), is the
  // same instant range.
  for (std::string window :
       {std::string{"startDateTime="}
            + http::percent_encode("2026-12-01T01:00:00+01:00")
            + "&endDateTime="
            + http::percent_encode("2026-12-01T19:00:00-05:00"),
        std::string{"startDateTime=2026-12-01T00:00:00"
                    "&endDateTime=2026-12-02T00:00:00"}}) {
    INFO("window " << window);
    auto r = get(view_path() + "?" + window, tok);
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(ids_of({r}) == expected);
  }
  // A narrow window.
  auto narrow = get(view_path()
                        + "?startDateTime=2026-12-01T10:30:00Z"
                          "&endDateTime=2026-12-01T10:45:00Z",
                    tok);
  E2E_REQUIRE_STATUS(narrow, 200);
  CHECK(ids_of({narrow}) == std::vector<std::string>{spanning, inside});

  // Moved out of the window by a PATCH, it leaves the view.
  E2E_REQUIRE_STATUS(patch(event_path(admin_id, inside), tok,
                           R"({"start":{"dateTime":"2026-12-05T10:00:00",)"
                           R"("timeZone":"UTC"},"end":{"dateTime":)"
                           R"("2026-12-05T11:00:00","timeZone":"UTC"}})"),
                     200);
  E2E_REQUIRE_STATUS(del(event_path(admin_id, straddle_end), tok), 204);
  auto later = get(view_path() + "?" + december_1st, tok);
  E2E_REQUIRE_STATUS(later, 200);
  CHECK(ids_of({later})
        == std::vector<std::string>{spanning, straddle_start, instant});
}

TEST_CASE_METHOD(calendar_view, "calendarView: the window is required",
                 "[emulator][calendarView]") {
  auto cal = create_calendar("CRM");
  for (std::string target : {view_path(), view_path(cal)}) {
    for (std::string query :
         {std::string{}, std::string{"?startDateTime=2026-12-01T00:00:00Z"},
          std::string{"?endDateTime=2026-12-02T00:00:00Z"},
          std::string{
              "?startDateTime=tomorrow&endDateTime=2026-12-02T00:00:00Z"},
          std::string{"?startDateTime=2026-12-01T00:00:00Z&endDateTime="}}) {
      INFO("GET " << target << query);
      check_error(get(target + query, tok), 400, "ErrorInvalidParameter");
    }
  }
  check_error(get(view_path("AAMkAnoSuchCalendar") + "?" + december_1st, tok),
              404, "ErrorItemNotFound");
  check_error(get(view_path() + "?" + december_1st, ""), 401,
              "InvalidAuthenticationToken");
}

TEST_CASE_METHOD(calendar_view, "calendarView: paging",
                 "[emulator][calendarView][paging]") {
  auto cal = create_calendar("CRM");
  auto target = calendar_events_path(admin_id, cal);
  // 12 events in the window, created latest first; 2 outside it.
  std::vector<std::string> expected(12);
  for (int i = 11; i >= 0; --i) {
    auto hour = (i < 10 ? "0" : "") + std::to_string(i);
    expected[static_cast<size_t>(i)]
        = create(target, "e" + hour, "2026-12-01T" + hour + ":00:00",
                 "2026-12-01T" + hour + ":30:00");
  }
  create(target, "outside", "2026-12-03T10:00:00", "2026-12-03T11:00:00");
  create(target, "outside", "2026-11-29T10:00:00", "2026-11-29T11:00:00");

  SECTION("10 a page by default") {
    auto pages = walk(view_path(cal) + "?" + december_1st, tok);
    REQUIRE(pages.size() == 2);
    CHECK(pages[0].size("/value") == 10);
    CHECK(pages[1].size("/value") == 2);
    CHECK(ids_of(pages) == expected);
    // The window is carried in the link.
    auto link = pages[0].str("/@odata.nextLink");
    CHECK(starts_with(link, origin() + view_path(cal) + "?"));
    CHECK(link.find("startDateTime=") != std::string::npos);
    CHECK(link.find("endDateTime=") != std::string::npos);
  }
  SECTION("$top=5") {
    auto pages = walk(view_path(cal) + "?" + december_1st + "&$top=5", tok);
    REQUIRE(pages.size() == 3);
    CHECK(pages[0].size("/value") == 5);
    CHECK(pages[1].size("/value") == 5);
    CHECK(pages[2].size("/value") == 2);
    CHECK(ids_of(pages) == expected);
    CHECK(as_set(ids_of(pages)).size() == 12);
  }
  SECTION("$top equal to the count needs no second page") {
    auto pages = walk(view_path(cal) + "?" + december_1st + "&$top=12", tok);
    REQUIRE(pages.size() == 1);
    CHECK(ids_of(pages) == expected);
  }
}
