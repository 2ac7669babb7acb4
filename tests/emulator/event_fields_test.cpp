// Event fields Outlook users notice: sensitivity, showAs, isReminderOn,
// reminderMinutesBeforeStart and categories are stored, returned on every
// read (GET, list, calendarView, delta) and changed by PATCH; a value Graph
// would not accept is refused with 400 and leaves the event as it was.
#include <catch2/catch.hpp>

#include "tests/emulator/harness.hpp"

using namespace crmsync::emulator_test;

namespace {

const std::string fields
    = R"(,"sensitivity":"private","showAs":"oof","isReminderOn":false,)"
      R"("reminderMinutesBeforeStart":1440,"categories":["Red category","Kunde"])";

void check_fields(const api_response& e, std::string_view at) {
  std::string p{at};
  CHECK(e.str(p + "/sensitivity") == "private");
  CHECK(e.str(p + "/showAs") == "oof");
  CHECK_FALSE(e.boolean(p + "/isReminderOn"));
  CHECK(e.i64(p + "/reminderMinutesBeforeStart") == 1440);
  REQUIRE(e.size(p + "/categories") == 2);
  CHECK(e.str(p + "/categories/0") == "Red category");
  CHECK(e.str(p + "/categories/1") == "Kunde");
}

} // namespace

TEST_CASE_METHOD(contoso,
                 "event fields: sensitivity, showAs, reminder and categories "
                 "are kept and shown on every read",
                 "[emulator][fields]") {
  auto plain = create_event(events_path(admin_id), event_body("plain"));
  // Outlook's defaults.
  CHECK(plain.str("/sensitivity") == "normal");
  CHECK(plain.str("/showAs") == "busy");
  CHECK(plain.boolean("/isReminderOn"));
  CHECK(plain.i64("/reminderMinutesBeforeStart") == 15);
  CHECK(plain.size("/categories") == 0);

  auto e = create_event(events_path(admin_id),
                        event_body("private", "2026-12-01T10:00:00",
                                   "2026-12-01T11:00:00", fields));
  check_fields(e, "");
  check_fields(get(event_path(admin_id, e.str("/id")), tok), "");
  auto list = get(events_path(admin_id), tok);
  REQUIRE(list.size("/value") == 2);
  check_fields(list, "/value/1");
  auto view = get(user_path(admin_id)
                      + "/calendarView?startDateTime=2026-12-01T00:00:00Z"
                        "&endDateTime=2026-12-02T00:00:00Z",
                  tok);
  REQUIRE(view.size("/value") == 2);
  check_fields(view, "/value/1");

  // Each value of each enumeration is taken; a PATCH changes only what it
  // names.
  for (auto s : {"normal", "personal", "private", "confidential"}) {
    auto r = patch(event_path(admin_id, e.str("/id")), tok,
                   std::string{R"({"sensitivity":")"} + s + "\"}");
    REQUIRE(r.status == 200);
    CHECK(r.str("/sensitivity") == s);
    CHECK(r.str("/showAs") == "oof");
  }
  for (auto s :
       {"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"}) {
    auto r = patch(event_path(admin_id, e.str("/id")), tok,
                   std::string{R"({"showAs":")"} + s + "\"}");
    REQUIRE(r.status == 200);
    CHECK(r.str("/showAs") == s);
  }
  auto r = patch(event_path(admin_id, e.str("/id")), tok,
                 R"({"isReminderOn":true,"reminderMinutesBeforeStart":0,)"
                 R"("categories":[]})");
  REQUIRE(r.status == 200);
  CHECK(r.boolean("/isReminderOn"));
  CHECK(r.i64("/reminderMinutesBeforeStart") == 0);
  CHECK(r.size("/categories") == 0);
  CHECK(r.str("/sensitivity") == "confidential");
}

TEST_CASE_METHOD(contoso,
                 "event fields: values Graph refuses answer 400 and change "
                 "nothing",
                 "[emulator][fields]") {
  auto e = create_event(
      events_path(admin_id),
      event_body("kept", "2026-12-01T10:00:00", "2026-12-01T11:00:00", fields));
  for (const char* bad : {
           R"({"sensitivity":"secret"})",
           R"({"sensitivity":3})",
           R"({"showAs":"away"})",
           R"({"showAs":null})",
           R"({"reminderMinutesBeforeStart":"15"})",
           R"({"reminderMinutesBeforeStart":-5})",
           R"({"reminderMinutesBeforeStart":99999999999})",
           R"({"categories":"Red category"})",
           R"({"categories":["ok",7]})",
       }) {
    INFO(bad);
    check_error(patch(event_path(admin_id, e.str("/id")), tok, bad), 400,
                "RequestBodyRead");
  }
  check_error(patch(event_path(admin_id, e.str("/id")), tok,
                    R"({"isReminderOn":"yes"})"),
              400, "BadRequest");
  // A create with a bad value makes no event.
  check_error(post(events_path(admin_id), tok,
                   event_body("never", "2026-12-01T10:00:00",
                              "2026-12-01T11:00:00", R"(,"showAs":"Busy!")")),
              400, "RequestBodyRead");
  auto after = get(event_path(admin_id, e.str("/id")), tok);
  check_fields(after, "");
  CHECK(after.str("/changeKey") == e.str("/changeKey"));
  CHECK(get(events_path(admin_id), tok).size("/value") == 1);
}
