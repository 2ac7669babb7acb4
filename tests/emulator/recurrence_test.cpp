// Recurring series: every Graph pattern (daily, weekly, absoluteMonthly,
// relativeMonthly, absoluteYearly, relativeYearly) expanded into
// occurrences in calendarView and calendarView/delta, with type,
// seriesMasterId and originalStart; the events list shows the series
// master only.
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "tests/emulator/harness.hpp"

using namespace crmsync::emulator_test;

namespace {

const std::string weekly_standup = R"({"subject":"standup",
          "start":{"dateTime":"2026-12-01T09:00:00","timeZone":"W. Europe Standard Time"},
          "end":{"dateTime":"2026-12-01T09:15:00","timeZone":"W. Europe Standard Time"},
          "recurrence":{"pattern":{"type":"weekly","interval":1,
                                   "daysOfWeek":["monday","wednesday"],
                                   "firstDayOfWeek":"sunday"},
                        "range":{"type":"numbered","startDate":"2026-12-01",
                                 "numberOfOccurrences":5}}})";

const std::string every_other_day = R"({"subject":"gym",
          "start":{"dateTime":"2026-12-01T18:00:00","timeZone":"UTC"},
          "end":{"dateTime":"2026-12-01T19:00:00","timeZone":"UTC"},
          "recurrence":{"pattern":{"type":"daily","interval":2},
                        "range":{"type":"endDate","startDate":"2026-12-01",
                                 "endDate":"2026-12-07"}}})";

std::string view_query(std::string_view from, std::string_view to) {
  return "?startDateTime=" + std::string{from}
         + "&endDateTime=" + std::string{to} + "&$top=100";
}

/// A new calendar holding the every-other-day series, and the first delta
/// round over December on it.
std::pair<api_response, api_response> series_and_first_delta(contoso& graph) {
  auto cal = graph.create_calendar("CRM");
  auto master = graph.create_event(calendar_events_path(admin_id, cal),
                                   every_other_day);
  auto first = graph.get(
      calendar_path(admin_id, cal) + "/calendarView/delta"
          + view_query("2026-12-01T00:00:00Z", "2026-12-31T00:00:00Z"),
      graph.tok);
  return {std::move(master), std::move(first)};
}

} // namespace

TEST_CASE_METHOD(contoso, "recurrence: weekly series expand into occurrences",
                 "[emulator][recurrence]") {
  auto master = create_event(events_path(admin_id), weekly_standup);
  CHECK(master.str("/type") == "seriesMaster");
  CHECK(master.str("/recurrence/pattern/type") == "weekly");
  auto view
      = get(user_path(admin_id) + "/calendarView"
                + view_query("2026-11-01T00:00:00Z", "2027-01-31T00:00:00Z"),
            tok);
  REQUIRE(view.status == 200);
  REQUIRE(view.size("/value") == 5);
  // Tuesday 1 December starts the range: Wednesdays and Mondays follow;
  // 09:00 in Berlin is 08:00 UTC in December.
  const char* expected[]
      = {"2026-12-02", "2026-12-07", "2026-12-09", "2026-12-14", "2026-12-16"};
  for (size_t i = 0; i < 5; ++i) {
    auto at = "/value/" + std::to_string(i);
    CHECK(view.str(at + "/type") == "occurrence");
    CHECK(view.str(at + "/seriesMasterId") == master.str("/id"));
    CHECK(view.str(at + "/start/dateTime")
          == std::string{expected[i]} + "T08:00:00.0000000");
    CHECK(view.str(at + "/originalStart")
          == std::string{expected[i]} + "T08:00:00Z");
    CHECK(view.is_null(at + "/recurrence"));
    CHECK(view.str(at + "/id") != master.str("/id"));
  }
  // The events list shows the series once, as its master.
  auto list = get(events_path(admin_id), tok);
  REQUIRE(list.size("/value") == 1);
  CHECK(list.str("/value/0/type") == "seriesMaster");
}

TEST_CASE_METHOD(contoso, "recurrence: daily series end on their end date",
                 "[emulator][recurrence]") {
  create_event(events_path(admin_id), every_other_day);
  auto view
      = get(user_path(admin_id) + "/calendarView"
                + view_query("2026-12-02T00:00:00Z", "2026-12-31T00:00:00Z"),
            tok);
  REQUIRE(view.status == 200);
  REQUIRE(view.size("/value") == 3); // the 3rd, 5th and 7th
  CHECK(view.str("/value/0/start/dateTime") == "2026-12-03T18:00:00.0000000");
  CHECK(view.str("/value/2/start/dateTime") == "2026-12-07T18:00:00.0000000");
}

TEST_CASE_METHOD(contoso, "recurrence: delta rounds carry occurrences",
                 "[emulator][recurrence]") {
  auto [master, first] = series_and_first_delta(*this);
  REQUIRE(first.status == 200);
  REQUIRE(first.size("/value") == 4);
  for (size_t i = 0; i < 4; ++i)
    CHECK(first.str("/value/" + std::to_string(i) + "/seriesMasterId")
          == master.str("/id"));
  // Renaming the series reports every occurrence again.
  REQUIRE(patch(event_path(admin_id, master.str("/id")), tok,
                R"x({"subject":"gym (new place)"})x")
              .status
          == 200);
  auto next = get(target_of(first.str("/@odata.deltaLink")), tok);
  REQUIRE(next.status == 200);
  REQUIRE(next.size("/value") == 4);
  CHECK(next.str("/value/0/subject") == "gym (new place)");
}

TEST_CASE_METHOD(contoso, "recurrence: broken patterns are refused",
                 "[emulator][recurrence]") {
  for (
      const char* recurrence :
      {R"({"pattern":{"type":"absoluteMonthly","interval":1},"range":{"type":"noEnd","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"absoluteMonthly","interval":1,"dayOfMonth":32},"range":{"type":"noEnd","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"relativeMonthly","interval":1,"index":"first"},"range":{"type":"noEnd","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"relativeMonthly","interval":1,"daysOfWeek":["monday"],"index":"fifth"},"range":{"type":"noEnd","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"absoluteYearly","interval":1,"dayOfMonth":5},"range":{"type":"noEnd","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"absoluteYearly","interval":1,"dayOfMonth":5,"month":13},"range":{"type":"noEnd","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"relativeYearly","interval":1,"month":11},"range":{"type":"noEnd","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"daily","interval":1000},"range":{"type":"noEnd","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"daily"},"range":{"type":"forever","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"weekly","interval":1},"range":{"type":"noEnd","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"daily","interval":0},"range":{"type":"noEnd","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"daily"},"range":{"type":"endDate","startDate":"2026-12-01","endDate":"2026-11-01"}})",
       R"({"pattern":{"type":"daily"},"range":{"type":"numbered","startDate":"2026-12-01"}})",
       R"({"pattern":{"type":"daily"}})"}) {
    INFO(recurrence);
    auto body
        = std::
              string{R"({"subject":"x","start":{"dateTime":"2026-12-01T09:00:00","timeZone":"UTC"},)"}
          + R"("end":{"dateTime":"2026-12-01T10:00:00","timeZone":"UTC"},"recurrence":)"
          + recurrence + "}";
    check_error(post(events_path(admin_id), tok, body), 400,
                "ErrorInvalidRecurrence");
  }
  // A pattern type Graph does not have is not even read.
  check_error(
      post(events_path(admin_id), tok,
           event_body(
               "x", "2026-12-01T09:00:00", "2026-12-01T10:00:00",
               R"(,"recurrence":{"pattern":{"type":"hourly","interval":1},)"
               R"("range":{"type":"noEnd","startDate":"2026-12-01"}})")),
      400, "RequestBodyRead");
  CHECK(get(events_path(admin_id), tok).size("/value") == 0);
}

namespace {

/// The dates (YYYY-MM-DD) of the occurrences a calendarView over
/// [from, to) shows of a series made with `pattern` and `range` (starting
/// 09:00 UTC on range.startDate), checked to be occurrences of it.
std::vector<std::string>
occurrence_dates(contoso& graph, const std::string& start_date,
                 const std::string& pattern, const std::string& range,
                 std::string_view from, std::string_view to) {
  auto master = graph.create_event(
      events_path(admin_id),
      event_body("series", start_date + "T09:00:00", start_date + "T10:00:00",
                 R"(,"recurrence":{"pattern":)" + pattern + R"(,"range":)"
                     + range + "}"));
  CHECK(master.str("/type") == "seriesMaster");
  auto view = graph.get(
      user_path(admin_id) + "/calendarView" + view_query(from, to), graph.tok);
  REQUIRE(view.status == 200);
  std::vector<std::string> out;
  for (size_t i = 0; i < view.size("/value"); ++i) {
    auto at = "/value/" + std::to_string(i);
    CHECK(view.str(at + "/type") == "occurrence");
    CHECK(view.str(at + "/seriesMasterId") == master.str("/id"));
    CHECK(view.str(at + "/start/dateTime").substr(10) == "T09:00:00.0000000");
    out.push_back(view.str(at + "/start/dateTime").substr(0, 10));
  }
  REQUIRE(graph.del(event_path(admin_id, master.str("/id")), graph.tok).status
          == 204);
  return out;
}

using dates = std::vector<std::string>;

} // namespace

TEST_CASE_METHOD(contoso,
                 "recurrence: monthly and yearly patterns expand as in "
                 "Outlook",
                 "[emulator][recurrence]") {
  // The 31st: months with fewer days have it on their last day.
  CHECK(
      occurrence_dates(
          *this, "2027-01-31",
          R"({"type":"absoluteMonthly","interval":1,"dayOfMonth":31})",
          R"({"type":"numbered","startDate":"2027-01-31","numberOfOccurrences":4})",
          "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z")
      == dates{"2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"});
  // The last Thursday of every other month, up to an end date.
  CHECK(
      occurrence_dates(
          *this, "2026-12-01",
          R"({"type":"relativeMonthly","interval":2,"daysOfWeek":["thursday"],"index":"last"})",
          R"({"type":"endDate","startDate":"2026-12-01","endDate":"2027-06-30"})",
          "2026-11-01T00:00:00Z", "2028-01-01T00:00:00Z")
      == dates{"2026-12-31", "2027-02-25", "2027-04-29", "2027-06-24"});
  // The second Tuesday, three times (the first month's is after the start).
  CHECK(
      occurrence_dates(
          *this, "2027-01-01",
          R"({"type":"relativeMonthly","interval":1,"daysOfWeek":["tuesday"],"index":"second"})",
          R"({"type":"numbered","startDate":"2027-01-01","numberOfOccurrences":3})",
          "2026-11-01T00:00:00Z", "2028-01-01T00:00:00Z")
      == dates{"2027-01-12", "2027-02-09", "2027-03-09"});
  // 29 February: on the 28th in years without it.
  CHECK(
      occurrence_dates(
          *this, "2027-01-01",
          R"({"type":"absoluteYearly","interval":1,"month":2,"dayOfMonth":29})",
          R"({"type":"numbered","startDate":"2027-01-01","numberOfOccurrences":3})",
          "2026-11-01T00:00:00Z", "2030-01-01T00:00:00Z")
      == dates{"2027-02-28", "2028-02-29", "2029-02-28"});
  // The fourth Thursday of November.
  CHECK(
      occurrence_dates(
          *this, "2026-01-01",
          R"({"type":"relativeYearly","interval":1,"month":11,"daysOfWeek":["thursday"],"index":"fourth"})",
          R"({"type":"numbered","startDate":"2026-01-01","numberOfOccurrences":3})",
          "2025-11-01T00:00:00Z", "2030-01-01T00:00:00Z")
      == dates{"2026-11-26", "2027-11-25", "2028-11-23"});
  // No end: what falls in the window.
  CHECK(occurrence_dates(
            *this, "2026-12-15",
            R"({"type":"absoluteMonthly","interval":1,"dayOfMonth":15})",
            R"({"type":"noEnd","startDate":"2026-12-15"})",
            "2027-02-01T00:00:00Z", "2027-05-01T00:00:00Z")
        == dates{"2027-02-15", "2027-03-15", "2027-04-15"});
}

TEST_CASE_METHOD(contoso,
                 "recurrence: the series shows its recurrence as Graph does",
                 "[emulator][recurrence]") {
  auto master = create_event(
      events_path(admin_id),
      event_body(
          "thanksgiving", "2026-11-26T09:00:00", "2026-11-26T10:00:00",
          R"(,"recurrence":{"pattern":{"type":"relativeYearly","interval":1,)"
          R"("month":11,"daysOfWeek":["thursday"],"index":"fourth"},)"
          R"("range":{"type":"noEnd","startDate":"2026-11-26"}})"));
  auto read = get(event_path(admin_id, master.str("/id")), tok);
  CHECK(read.str("/recurrence/pattern/type") == "relativeYearly");
  CHECK(read.i64("/recurrence/pattern/interval") == 1);
  CHECK(read.i64("/recurrence/pattern/month") == 11);
  CHECK(read.i64("/recurrence/pattern/dayOfMonth") == 0);
  REQUIRE(read.size("/recurrence/pattern/daysOfWeek") == 1);
  CHECK(read.str("/recurrence/pattern/daysOfWeek/0") == "thursday");
  CHECK(read.str("/recurrence/pattern/firstDayOfWeek") == "sunday");
  CHECK(read.str("/recurrence/pattern/index") == "fourth");
  CHECK(read.str("/recurrence/range/type") == "noEnd");
  CHECK(read.str("/recurrence/range/startDate") == "2026-11-26");
  CHECK(read.str("/recurrence/range/endDate") == "0001-01-01");
  CHECK(read.i64("/recurrence/range/numberOfOccurrences") == 0);
}

TEST_CASE_METHOD(
    contoso, "recurrence: deleting a series removes each occurrence in delta",
    "[emulator][recurrence]") {
  auto [master, first] = series_and_first_delta(*this);
  REQUIRE(first.size("/value") == 4);
  std::set<std::string> occurrence_ids;
  for (size_t i = 0; i < 4; ++i)
    occurrence_ids.insert(first.str("/value/" + std::to_string(i) + "/id"));
  REQUIRE(del(event_path(admin_id, master.str("/id")), tok).status == 204);
  auto next = get(target_of(first.str("/@odata.deltaLink")), tok);
  REQUIRE(next.status == 200);
  std::set<std::string> removed;
  for (size_t i = 0; i < next.size("/value"); ++i) {
    auto at = "/value/" + std::to_string(i);
    CHECK(next.str(at + "/@removed/reason") == "deleted");
    removed.insert(next.str(at + "/id"));
  }
  for (auto& id : occurrence_ids)
    CHECK(removed.count(id) == 1);
  CHECK(removed.count(master.str("/id")) == 1);
}

TEST_CASE_METHOD(contoso,
                 "recurrence: a shortened series reports the occurrences it "
                 "lost as removed in delta",
                 "[emulator][recurrence]") {
  auto [master, first] = series_and_first_delta(*this);
  REQUIRE(first.size("/value") == 4);          // Dec 1, 3, 5, 7
  std::map<std::string, std::string> by_start; // start -> occurrence id
  for (size_t i = 0; i < 4; ++i) {
    auto at = "/value/" + std::to_string(i);
    by_start[first.str(at + "/start/dateTime").substr(0, 10)]
        = first.str(at + "/id");
  }
  // The series now ends on Dec 4: Dec 5 and Dec 7 are gone.
  auto shortened
      = patch(event_path(admin_id, master.str("/id")), tok,
              R"({"recurrence":{"pattern":{"type":"daily","interval":2},
                             "range":{"type":"endDate","startDate":"2026-12-01",
                                      "endDate":"2026-12-04"}}})");
  REQUIRE(shortened.status == 200);
  auto next = get(target_of(first.str("/@odata.deltaLink")), tok);
  REQUIRE(next.status == 200);
  std::set<std::string> removed, present;
  for (size_t i = 0; i < next.size("/value"); ++i) {
    auto at = "/value/" + std::to_string(i);
    if (next.has(at + "/@removed"))
      removed.insert(next.str(at + "/id"));
    else
      present.insert(next.str(at + "/id"));
  }
  CHECK(
      removed
      == std::set<std::string>{by_start["2026-12-05"], by_start["2026-12-07"]});
  CHECK(
      present
      == std::set<std::string>{by_start["2026-12-01"], by_start["2026-12-03"]});
  // A later round starts after the change: nothing more is removed.
  auto after = get(target_of(next.str("/@odata.deltaLink")), tok);
  REQUIRE(after.status == 200);
  CHECK(after.size("/value") == 0);
}

TEST_CASE_METHOD(contoso,
                 "recurrence: one occurrence is read, edited and cancelled on "
                 "its own",
                 "[emulator][recurrence]") {
  auto [master, first] = series_and_first_delta(*this);
  REQUIRE(first.size("/value") == 4);
  auto occ_id = first.str("/value/1/id");
  auto other_id = first.str("/value/2/id");
  auto occ = get(event_path(admin_id, occ_id), tok);
  REQUIRE(occ.status == 200);
  CHECK(occ.str("/type") == "occurrence");
  CHECK(occ.str("/seriesMasterId") == master.str("/id"));
  // Not a day of the series.
  CHECK(get(event_path(admin_id, master.str("/id") + "_20261202"), tok).status
        == 404);

  // An edit with a stale change key is refused; a good one makes an
  // exception that delta shows in place of the occurrence.
  CHECK(patch(event_path(admin_id, occ_id), tok, R"({"subject":"x"})",
              "W/\"stale\"")
            .status
        == 412);
  auto edited
      = patch(event_path(admin_id, occ_id), tok, R"({"subject":"gym late"})",
              "W/\"" + occ.str("/changeKey") + "\"");
  REQUIRE(edited.status == 200);
  CHECK(edited.str("/type") == "exception");
  CHECK(edited.str("/changeKey") != occ.str("/changeKey"));
  auto next = get(target_of(first.str("/@odata.deltaLink")), tok);
  REQUIRE(next.status == 200);
  std::map<std::string, std::string> subjects;
  for (size_t i = 0; i < next.size("/value"); ++i) {
    auto at = "/value/" + std::to_string(i);
    if (!next.has(at + "/@removed"))
      subjects[next.str(at + "/id")] = next.str(at + "/subject");
  }
  CHECK(subjects[occ_id] == "gym late");
  CHECK(subjects[other_id] == "gym");

  // Cancelling one occurrence: delta reports it removed, the rest stays.
  REQUIRE(del(event_path(admin_id, other_id), tok).status == 204);
  CHECK(get(event_path(admin_id, other_id), tok).status == 404);
  auto after = get(target_of(next.str("/@odata.deltaLink")), tok);
  REQUIRE(after.status == 200);
  std::set<std::string> removed, present;
  for (size_t i = 0; i < after.size("/value"); ++i) {
    auto at = "/value/" + std::to_string(i);
    (after.has(at + "/@removed") ? removed : present)
        .insert(after.str(at + "/id"));
  }
  CHECK(removed == std::set<std::string>{other_id});
  CHECK(present.count(occ_id) == 1);
  CHECK(present.size() == 3);
}

TEST_CASE_METHOD(contoso,
                 "recurrence: a series' instances in a window, wherever it is",
                 "[emulator][recurrence]") {
  auto cal = create_calendar("CRM");
  auto master = create_event(
      calendar_events_path(admin_id, cal),
      event_body(
          "payroll", "2027-01-29T09:00:00", "2027-01-29T10:00:00",
          R"(,"recurrence":{"pattern":{"type":"relativeMonthly","interval":1,)"
          R"("daysOfWeek":["monday","tuesday","wednesday","thursday",)"
          R"("friday"],"index":"last"},"range":{"type":"noEnd",)"
          R"("startDate":"2027-01-01"}})"));
  auto single = create_event(events_path(admin_id), event_body("single"));
  auto instances = [&](const std::string& id) {
    return get(event_path(admin_id, id) + "/instances"
                   + view_query("2027-01-01T00:00:00Z", "2027-05-01T00:00:00Z"),
               tok);
  };
  // The last weekday of January to April 2027.
  auto got = instances(master.str("/id"));
  REQUIRE(got.status == 200);
  std::vector<std::string> days;
  for (size_t i = 0; i < got.size("/value"); ++i) {
    CHECK(got.str("/value/" + std::to_string(i) + "/seriesMasterId")
          == master.str("/id"));
    days.push_back(got.str("/value/" + std::to_string(i) + "/start/dateTime")
                       .substr(0, 10));
  }
  CHECK(days
        == std::vector<std::string>{"2027-01-29", "2027-02-26", "2027-03-31",
                                    "2027-04-30"});
  // A single event has none; an unknown id is not found; a window is needed.
  auto none = instances(single.str("/id"));
  REQUIRE(none.status == 200);
  CHECK(none.size("/value") == 0);
  check_error(instances("AAMkAnotThere"), 404, "ErrorItemNotFound");
  check_error(get(event_path(admin_id, master.str("/id")) + "/instances", tok),
              400, "ErrorInvalidParameter");
}
