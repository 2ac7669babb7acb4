// sensitivity, showAs, the reminder and categories in the Graph mapping
// (sync/graph_event.hpp): sent on creates and updates, read from Graph, and
// a value the CRM does not know left at the CRM's default.
#include "sync/graph_event.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

using namespace crmsync;

TEST_CASE("Outlook's event fields go to Graph and come back",
          "[sync][graph_event][fields]") {
  event_record e;
  e.title = "Review";
  e.start_ms = 1'800'000'000'000;
  e.end_ms = e.start_ms + 3'600'000;
  e.sensitivity = "confidential";
  e.show_as = "workingElsewhere";
  e.reminder_on = false;
  e.reminder_minutes = 90;
  e.categories = {"Red category", "Kunde"};
  for (bool identity : {true, false}) {
    auto body = sync::to_graph(e, identity);
    INFO(body);
    simdjson::dom::parser p;
    auto doc = p.parse(body);
    CHECK(std::string_view{doc["sensitivity"]} == "confidential");
    CHECK(std::string_view{doc["showAs"]} == "workingElsewhere");
    CHECK_FALSE(bool{doc["isReminderOn"]});
    CHECK(int64_t{doc["reminderMinutesBeforeStart"]} == 90);
    CHECK(simdjson::dom::array{doc["categories"]}.size() == 2);
    // Graph's answer carries them back.
    std::string answer = body;
    answer.pop_back();
    answer += R"(,"id":"AAMk1","type":"singleInstance"})";
    sync::graph_event g;
    REQUIRE(sync::from_graph(answer, g));
    CHECK(g.content.sensitivity == e.sensitivity);
    CHECK(g.content.show_as == e.show_as);
    CHECK(g.content.reminder_on == e.reminder_on);
    CHECK(g.content.reminder_minutes == e.reminder_minutes);
    CHECK(g.content.categories == e.categories);
  }
}

TEST_CASE("values the CRM does not know keep the CRM's defaults",
          "[sync][graph_event][fields]") {
  sync::graph_event g;
  REQUIRE(sync::from_graph(
      R"({"id":"AAMk2","subject":"x","sensitivity":"topSecret","showAs":7,)"
      R"("reminderMinutesBeforeStart":-3,"categories":["", "Blue", 4],)"
      R"("start":{"dateTime":"2027-01-01T10:00:00","timeZone":"UTC"},)"
      R"("end":{"dateTime":"2027-01-01T11:00:00","timeZone":"UTC"}})",
      g));
  CHECK(g.content.sensitivity == "normal");
  CHECK(g.content.show_as == "busy");
  CHECK(g.content.reminder_on);
  CHECK(g.content.reminder_minutes == 0);
  CHECK(g.content.categories == std::vector<std::string>{"Blue"});
}
