// End-to-end: what an event looks like after it crossed between the CRM
// and Outlook (issue 5): notifications that arrive out of order, all-day
// events, time zones (Windows and IANA names, across a DST change),
// recurring series made in Outlook, and participants. Each case ends with
// the convergence checker (crmsyncctl check ORG) finding no difference.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

namespace {

/// The admin's CRM events titled `title`.
std::vector<crm_event> titled(sync_env& env, const std::string& title) {
  std::vector<crm_event> out;
  for (auto& e : env.crm_events())
    if (e.title == title)
      out.push_back(e);
  return out;
}

/// Polls until `done` holds for the admin's CRM events; REQUIREs it and
/// returns the events it held for.
std::vector<crm_event>
wait_for_crm(sync_env& env, const std::string& what,
             const std::function<bool(const std::vector<crm_event>&)>& done) {
  std::vector<crm_event> last;
  bool ok = crmsync::test::eventually([&] {
    last = env.crm_events();
    return done(last);
  });
  INFO("waiting for the CRM: " << what);
  std::string seen;
  for (auto& e : last)
    seen += "  '" + e.title + "' " + e.start + ".." + e.end + " all_day="
            + (e.all_day ? "true" : "false") + " zone=" + e.time_zone + "\n";
  INFO("the CRM has:\n" << seen);
  INFO("status " << env.status().body);
  REQUIRE(ok);
  return last;
}

/// The one CRM event titled `title` once it is there.
crm_event wait_for_title(sync_env& env, const std::string& title) {
  auto all = wait_for_crm(env, "'" + title + "'",
                          [&](const std::vector<crm_event>& es) {
                            return std::count_if(es.begin(), es.end(),
                                                 [&](const crm_event& e) {
                                                   return e.title == title;
                                                 })
                                   == 1;
                          });
  for (auto& e : all)
    if (e.title == title)
      return e;
  FAIL("unreachable");
  return {};
}

/// Polls until the CRM event `id` satisfies `done`; returns it.
crm_event wait_for_event(sync_env& env, const std::string& id,
                         const std::string& what,
                         const std::function<bool(const crm_event&)>& done) {
  crm_event last;
  bool ok = crmsync::test::eventually([&] {
    last = env.get_event(id);
    return done(last);
  });
  INFO("waiting for CRM event " << id << ": " << what);
  INFO("it is '" << last.title << "' " << last.start << ".." << last.end
                 << " all_day=" << last.all_day << " zone=" << last.time_zone);
  REQUIRE(ok);
  return last;
}

/// The Office 365 copy of CRM event `title` in the CRM calendar.
o365_event o365_titled(sync_env& env, const std::string& cal,
                       const std::string& title) {
  std::vector<o365_event> found;
  for (auto& e : env.o365_events(cal))
    if (e.subject == title)
      found.push_back(e);
  INFO("Office 365 events titled '" << title << "'");
  REQUIRE(found.size() == 1);
  return found.front();
}

std::string graph_time(std::string_view wall, std::string_view zone) {
  return "{\"dateTime\":" + json_str(wall) + ",\"timeZone\":" + json_str(zone)
         + "}";
}

/// A Graph event body with start and end in `zone`.
std::string graph_body(std::string_view subject, std::string_view start,
                       std::string_view end, std::string_view zone,
                       bool all_day = false) {
  return "{\"subject\":" + json_str(subject) + ",\"start\":"
         + graph_time(start, zone) + ",\"end\":" + graph_time(end, zone)
         + ",\"isAllDay\":" + (all_day ? "true" : "false") + "}";
}

/// start/end of a Graph event as read in `zone`: "2027-03-26T10:00:00".
std::pair<std::string, std::string> wall_times(const api_response& r) {
  return {r.str("/start/dateTime").substr(0, 19),
          r.str("/end/dateTime").substr(0, 19)};
}

} // namespace

TEST_CASE("notifications delivered in reverse leave every event in its final "
          "state",
          "[sync][fidelity][notifications]") {
  sync_env env;
  // A CRM event Outlook will edit twice: only its last version may stay.
  auto c
      = env.create_event("Reorder C", hours_from_now(60), hours_from_now(61));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.wait_in_sync();
  auto c_graph = o365_titled(env, cal, "Reorder C").id;
  auto sub = env.subscription();
  // Graph's own notifications are lost from here on: the CRM learns of
  // Outlook's changes only from the ones posted below, in reverse.
  env.set_faults(R"({"drop_notifications":1})");

  std::vector<std::pair<std::string, std::string>> sent; // changeType, id
  auto a = env.outlook_create(cal, "Reorder A", hours_from_now(30),
                              hours_from_now(31));
  sent.emplace_back("created", a);
  env.outlook_rename(a, "Reorder A v2");
  sent.emplace_back("updated", a);
  env.outlook_patch(a, "{\"start\":" + graph_time(hours_from_now(40), "UTC")
                           + ",\"end\":" + graph_time(hours_from_now(41), "UTC")
                           + "}");
  sent.emplace_back("updated", a);
  env.outlook_delete(a);
  sent.emplace_back("deleted", a);
  auto b = env.outlook_create(cal, "Reorder B", hours_from_now(50),
                              hours_from_now(51));
  sent.emplace_back("created", b);
  auto b_start = hours_from_now(52), b_end = hours_from_now(54);
  env.outlook_patch(b, "{\"subject\":\"Reorder B final\",\"start\":"
                           + graph_time(b_start, "UTC")
                           + ",\"end\":" + graph_time(b_end, "UTC") + "}");
  sent.emplace_back("updated", b);
  env.outlook_rename(c_graph, "Reorder C v2");
  sent.emplace_back("updated", c_graph);
  env.outlook_rename(c_graph, "Reorder C final");
  sent.emplace_back("updated", c_graph);

  // Nothing has told the node yet.
  CHECK(titled(env, "Reorder B final").empty());
  CHECK(env.get_event(c).title == "Reorder C");

  std::reverse(sent.begin(), sent.end());
  for (auto& [change, id] : sent)
    E2E_REQUIRE_STATUS(env.notify(sub, change, id), 202);

  auto crm = wait_for_crm(env, "B and C final, A gone",
                          [](const std::vector<crm_event>& es) {
                            int b = 0, c = 0, a = 0;
                            for (auto& e : es) {
                              b += e.title == "Reorder B final";
                              c += e.title == "Reorder C final";
                              a += e.title.rfind("Reorder A", 0) == 0;
                            }
                            return a == 0 && b == 1 && c == 1;
                          });
  env.wait_in_sync();
  env.wait_converged();
  auto final_b = titled(env, "Reorder B final");
  REQUIRE(final_b.size() == 1);
  CHECK(final_b[0].start == b_start);
  CHECK(final_b[0].end == b_end);
  CHECK(final_b[0].origin == "office365");
  CHECK(env.get_event(c).title == "Reorder C final");
  CHECK(titled(env, "Reorder B").empty());
  CHECK(titled(env, "Reorder C v2").empty());

  // The same notifications again, shuffled, long after the fact: stale
  // hints change nothing (A does not come back).
  std::rotate(sent.begin(), sent.begin() + 3, sent.end());
  std::swap(sent[0], sent[4]);
  for (auto& [change, id] : sent)
    E2E_REQUIRE_STATUS(env.notify(sub, change, id), 202);
  env.wait_for_status(
      [](const api_response& s) { return s.u64("/inbox") == 0; },
      "the stale notifications read");
  env.wait_converged();
  CHECK(env.crm_events().size() == crm.size());
  CHECK(titled(env, "Reorder A").empty());
  CHECK(titled(env, "Reorder A v2").empty());
}

TEST_CASE("delayed notifications arrive after later changes; the CRM ends "
          "with the last version",
          "[sync][fidelity][notifications]") {
  sync_env env;
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  // Every notification arrives well after the changes that follow it.
  env.set_faults(R"({"notification_delay_ms":1500})");
  auto a = env.outlook_create(cal, "Late A", hours_from_now(30),
                              hours_from_now(31));
  env.outlook_rename(a, "Late A v2");
  env.outlook_rename(a, "Late A v3");
  env.outlook_delete(a);
  auto b = env.outlook_create(cal, "Late B", hours_from_now(32),
                              hours_from_now(33));
  env.outlook_rename(b, "Late B final");
  wait_for_title(env, "Late B final");
  env.wait_in_sync();
  env.wait_converged();
  for (auto t : {"Late A", "Late A v2", "Late A v3", "Late B"})
    CHECK(titled(env, t).empty());
}

TEST_CASE("all-day events keep their dates both ways", "[sync][fidelity]") {
  sync_env env;
  // CRM all-day events: one day in UTC, several days in Berlin and Tokyo
  // (east of UTC: a zone offset would move it to the day before).
  auto one = env.create_event_json(
      R"({"title":"Offsite","start":"2027-03-10","end":"2027-03-11","all_day":true})");
  auto berlin = env.create_event_json(
      R"({"title":"Trade fair","start":"2027-04-05","end":"2027-04-08","all_day":true,"time_zone":"Europe/Berlin"})");
  auto tokyo = env.create_event_json(
      R"({"title":"Tokyo visit","start":"2027-04-12","end":"2027-04-14","all_day":true,"time_zone":"Tokyo Standard Time"})");
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.wait_in_sync();

  struct expect {
    std::string title, zone, start, end;
  };
  for (auto& x :
       {expect{"Offsite", "UTC", "2027-03-10", "2027-03-11"},
        expect{"Trade fair", "Europe/Berlin", "2027-04-05", "2027-04-08"},
        expect{"Tokyo visit", "Tokyo Standard Time", "2027-04-12",
               "2027-04-14"}}) {
    INFO(x.title);
    auto o = o365_titled(env, cal, x.title);
    CHECK(o.all_day);
    CHECK(o.time_zone == x.zone);
    // Midnight to midnight in the event's own zone, as Graph requires.
    auto r = env.outlook_get(o.id, x.zone);
    CHECK(r.boolean("/isAllDay"));
    CHECK(wall_times(r).first == x.start + "T00:00:00");
    CHECK(wall_times(r).second == x.end + "T00:00:00");
  }

  // Outlook's all-day events: Pacific (west of UTC) and Tokyo (east).
  env.outlook_create_json(cal, graph_body("Holiday", "2027-05-03T00:00:00",
                                          "2027-05-04T00:00:00",
                                          "Pacific Standard Time", true));
  auto trip = env.outlook_create_json(
      cal, graph_body("Kyoto trip", "2027-05-10T00:00:00",
                      "2027-05-13T00:00:00", "Tokyo Standard Time", true));
  auto holiday = wait_for_title(env, "Holiday");
  CHECK(holiday.all_day);
  CHECK(holiday.start == "2027-05-03");
  CHECK(holiday.end == "2027-05-04");
  CHECK(holiday.time_zone == "Pacific Standard Time");
  CHECK(holiday.origin == "office365");
  auto kyoto = wait_for_title(env, "Kyoto trip");
  CHECK(kyoto.all_day);
  CHECK(kyoto.start == "2027-05-10");
  CHECK(kyoto.end == "2027-05-13");
  CHECK(kyoto.time_zone == "Tokyo Standard Time");

  // Outlook moves the trip by a day; the CRM moves the offsite and makes
  // it two days.
  env.outlook_patch(
      trip, "{\"isAllDay\":true,\"start\":"
                + graph_time("2027-05-11T00:00:00", "Tokyo Standard Time")
                + ",\"end\":"
                + graph_time("2027-05-14T00:00:00", "Tokyo Standard Time")
                + "}");
  kyoto = wait_for_event(
      env, kyoto.id, "moved to 2027-05-11",
      [](const crm_event& e) { return e.start == "2027-05-11"; });
  CHECK(kyoto.end == "2027-05-14");
  CHECK(kyoto.all_day);
  env.patch_event(one, R"({"start":"2027-03-12","end":"2027-03-14"})");
  env.wait_in_sync();
  auto moved = o365_titled(env, cal, "Offsite");
  CHECK(moved.start == "2027-03-12");
  CHECK(moved.end == "2027-03-14");
  CHECK(moved.all_day);
  // An all-day event Outlook renamed keeps its days and zone.
  auto fair = o365_titled(env, cal, "Trade fair");
  env.outlook_rename(fair.id, "Trade fair (booth 4)");
  auto renamed = wait_for_event(env, berlin, "renamed", [](const crm_event& e) {
    return e.title == "Trade fair (booth 4)";
  });
  CHECK(renamed.all_day);
  CHECK(renamed.start == "2027-04-05");
  CHECK(renamed.end == "2027-04-08");
  CHECK(renamed.time_zone == "Europe/Berlin");
  CHECK(env.get_event(tokyo).start == "2027-04-12");
  env.wait_in_sync();
  env.wait_converged();
}

TEST_CASE("time zones survive the round trip, across a DST change",
          "[sync][fidelity][zones]") {
  sync_env env;
  // 10:00 in Berlin before (CET, UTC+1) and after (CEST, UTC+2) the change
  // of 2027-03-28, and 10:00 in Seattle after the US change of 2027-03-14.
  auto standup = env.create_event_json(
      R"({"title":"Berlin standup","start":"2027-03-26T09:00:00Z","end":"2027-03-26T09:30:00Z","time_zone":"Europe/Berlin"})");
  auto review = env.create_event_json(
      R"({"title":"Berlin review","start":"2027-03-29T08:00:00Z","end":"2027-03-29T09:00:00Z","time_zone":"Europe/Berlin"})");
  env.create_event_json(
      R"({"title":"Seattle sync","start":"2027-03-15T17:00:00Z","end":"2027-03-15T18:00:00Z","time_zone":"Pacific Standard Time"})");
  // A zone name Graph does not know goes as UTC instead of failing.
  env.create_event_json(
      R"({"title":"Nowhere","start":"2027-03-16T12:00:00Z","end":"2027-03-16T13:00:00Z","time_zone":"Mars/Olympus_Mons"})");
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.wait_in_sync();

  struct expect {
    std::string title, zone, start, end;
  };
  for (auto& x : {expect{"Berlin standup", "Europe/Berlin",
                         "2027-03-26T10:00:00", "2027-03-26T10:30:00"},
                  expect{"Berlin review", "Europe/Berlin",
                         "2027-03-29T10:00:00", "2027-03-29T11:00:00"},
                  expect{"Seattle sync", "Pacific Standard Time",
                         "2027-03-15T10:00:00", "2027-03-15T11:00:00"},
                  expect{"Nowhere", "UTC", "2027-03-16T12:00:00",
                         "2027-03-16T13:00:00"}}) {
    INFO(x.title);
    auto o = o365_titled(env, cal, x.title);
    CHECK(o.time_zone == x.zone);
    CHECK_FALSE(o.all_day);
    auto wall = wall_times(env.outlook_get(o.id, x.zone));
    CHECK(wall.first == x.start);
    CHECK(wall.second == x.end);
  }

  // Outlook's events in a Windows zone (before and after the US change)
  // and an IANA zone, read back with Prefer: outlook.timezone.
  auto call = env.outlook_create_json(
      cal, graph_body("Call from Seattle", "2027-03-12T09:00:00",
                      "2027-03-12T10:00:00", "Pacific Standard Time"));
  env.outlook_create_json(
      cal, graph_body("Seattle after DST", "2027-03-16T09:00:00",
                      "2027-03-16T10:00:00", "Pacific Standard Time"));
  auto pune = env.outlook_create_json(
      cal, graph_body("Pune demo", "2027-03-20T15:00:00", "2027-03-20T16:30:00",
                      "Asia/Kolkata"));
  auto r = env.outlook_get(call, "Pacific Standard Time");
  CHECK(r.str("/start/timeZone") == "Pacific Standard Time");
  CHECK(wall_times(r).first == "2027-03-12T09:00:00");

  auto c = wait_for_title(env, "Call from Seattle");
  CHECK(c.start == "2027-03-12T17:00:00Z"); // PST, UTC-8
  CHECK(c.end == "2027-03-12T18:00:00Z");
  CHECK(c.time_zone == "Pacific Standard Time");
  auto after = wait_for_title(env, "Seattle after DST");
  CHECK(after.start == "2027-03-16T16:00:00Z"); // PDT, UTC-7
  CHECK(after.time_zone == "Pacific Standard Time");
  auto p = wait_for_title(env, "Pune demo");
  CHECK(p.start == "2027-03-20T09:30:00Z");
  CHECK(p.end == "2027-03-20T11:00:00Z");
  CHECK(p.time_zone == "Asia/Kolkata");

  // Edits on either side keep the zone. The CRM moves the Seattle call
  // past the US change: 09:00 is now 16:00 UTC.
  env.patch_event(
      c.id, R"({"start":"2027-03-19T16:00:00Z","end":"2027-03-19T17:00:00Z"})");
  env.patch_event(review, R"({"title":"Berlin review, room 2"})");
  env.wait_in_sync();
  r = env.outlook_get(call, "Pacific Standard Time");
  CHECK(r.str("/originalStartTimeZone") == "Pacific Standard Time");
  CHECK(wall_times(r).first == "2027-03-19T09:00:00");
  CHECK(wall_times(r).second == "2027-03-19T10:00:00");
  auto rv = o365_titled(env, cal, "Berlin review, room 2");
  CHECK(rv.time_zone == "Europe/Berlin");
  CHECK(wall_times(env.outlook_get(rv.id, "Europe/Berlin")).first
        == "2027-03-29T10:00:00");
  // Outlook renames the standup and moves the demo in its own zone.
  env.outlook_rename(o365_titled(env, cal, "Berlin standup").id,
                     "Berlin standup (video)");
  env.outlook_patch(
      pune, "{\"start\":" + graph_time("2027-03-21T11:00:00", "Asia/Kolkata")
                + ",\"end\":"
                + graph_time("2027-03-21T12:00:00", "Asia/Kolkata") + "}");
  auto s = wait_for_event(env, standup, "renamed", [](const crm_event& e) {
    return e.title == "Berlin standup (video)";
  });
  CHECK(s.time_zone == "Europe/Berlin");
  CHECK(s.start == "2027-03-26T09:00:00Z");
  p = wait_for_event(env, p.id, "moved", [](const crm_event& e) {
    return e.start == "2027-03-21T05:30:00Z";
  });
  CHECK(p.end == "2027-03-21T06:30:00Z");
  CHECK(p.time_zone == "Asia/Kolkata");
  env.wait_in_sync();
  env.wait_converged();
}

TEST_CASE("a recurring series made in Outlook becomes one CRM event per "
          "occurrence and goes with the series",
          "[sync][fidelity][series]") {
  sync_env env;
  env.create_event("Single", hours_from_now(5), hours_from_now(6));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();

  // Daily, five times, in UTC; weekly on Mondays 09:00 Pacific time across
  // the US change of 2027-03-14.
  auto daily = env.outlook_create_json(
      cal,
      R"({"subject":"Daily sync","start":{"dateTime":"2027-01-11T09:00:00","timeZone":"UTC"},"end":{"dateTime":"2027-01-11T09:15:00","timeZone":"UTC"},"recurrence":{"pattern":{"type":"daily","interval":1},"range":{"type":"numbered","startDate":"2027-01-11","numberOfOccurrences":5}}})");
  auto weekly = env.outlook_create_json(
      cal,
      R"({"subject":"Weekly review","start":{"dateTime":"2027-03-01T09:00:00","timeZone":"Pacific Standard Time"},"end":{"dateTime":"2027-03-01T10:00:00","timeZone":"Pacific Standard Time"},"recurrence":{"pattern":{"type":"weekly","interval":1,"daysOfWeek":["monday"]},"range":{"type":"endDate","startDate":"2027-03-01","endDate":"2027-03-22"}}})");

  auto starts_of
      = [](const std::vector<crm_event>& es, const std::string& title) {
          std::vector<std::string> out;
          for (auto& e : es)
            if (e.title == title)
              out.push_back(e.start);
          std::sort(out.begin(), out.end());
          return out;
        };
  const std::vector<std::string> daily_starts{
      "2027-01-11T09:00:00Z", "2027-01-12T09:00:00Z", "2027-01-13T09:00:00Z",
      "2027-01-14T09:00:00Z", "2027-01-15T09:00:00Z"};
  const std::vector<std::string> weekly_starts{
      "2027-03-01T17:00:00Z", "2027-03-08T17:00:00Z", "2027-03-15T16:00:00Z",
      "2027-03-22T16:00:00Z"};
  auto crm = wait_for_crm(env, "5 daily and 4 weekly occurrences",
                          [&](const std::vector<crm_event>& es) {
                            return starts_of(es, "Daily sync") == daily_starts
                                   && starts_of(es, "Weekly review")
                                          == weekly_starts;
                          });
  env.wait_converged();
  CHECK(crm.size() == 10);
  for (auto& e : crm)
    if (e.title == "Weekly review") {
      CHECK(e.origin == "office365");
      CHECK(e.time_zone == "Pacific Standard Time");
    }

  // Renaming the series renames every occurrence, with no duplicates.
  env.outlook_rename(daily, "Daily standup");
  crm = wait_for_crm(env, "the daily occurrences renamed",
                     [&](const std::vector<crm_event>& es) {
                       return starts_of(es, "Daily standup") == daily_starts;
                     });
  env.wait_converged();
  CHECK(starts_of(crm, "Daily sync").empty());
  CHECK(crm.size() == 10);

  // Shortening the series in Outlook removes the occurrences it no longer
  // has from the CRM.
  env.outlook_patch(
      daily,
      R"({"recurrence":{"pattern":{"type":"daily","interval":1},"range":{"type":"numbered","startDate":"2027-01-11","numberOfOccurrences":3}}})");
  const std::vector<std::string> shortened(daily_starts.begin(),
                                           daily_starts.begin() + 3);
  crm = wait_for_crm(env, "the daily series shortened to 3",
                     [&](const std::vector<crm_event>& es) {
                       return starts_of(es, "Daily standup") == shortened;
                     });
  env.wait_converged();
  CHECK(crm.size() == 8);

  // Occurrences on their own: one renamed in Outlook, one in the CRM, and
  // one cancelled in Outlook; each reaches the other side alone.
  // (The events list shows series masters; calendarView shows their
  // occurrences.)
  // id and subject of the occurrence (or exception) starting at `start`.
  auto occurrence_at = [&](const std::string& start) {
    auto view = env.graph(
        "GET", "/users/admin@contoso.com/calendars/" + cal
                   + "/calendarView?startDateTime=2027-01-01T00:00:00Z"
                     "&endDateTime=2027-02-01T00:00:00Z&$top=100");
    E2E_REQUIRE_STATUS(view, 200);
    for (size_t i = 0; i < view.size("/value"); ++i) {
      auto at = "/value/" + std::to_string(i);
      if (!view.is_null(at + "/seriesMasterId")
          && view.str(at + "/start/dateTime").substr(0, 19) + "Z" == start)
        return std::make_pair(view.str(at + "/id"), view.str(at + "/subject"));
    }
    FAIL("no Outlook occurrence at " << start);
    return std::make_pair(std::string{}, std::string{});
  };
  env.outlook_rename(occurrence_at(daily_starts[0]).first, "Standup, Outlook");
  std::string crm_occurrence;
  for (auto& e : env.crm_events())
    if (e.title == "Daily standup" && e.start == daily_starts[1])
      crm_occurrence = e.id;
  REQUIRE_FALSE(crm_occurrence.empty());
  E2E_REQUIRE_STATUS(
      env.patch_event(crm_occurrence, R"({"title":"Standup, CRM"})"), 200);
  crm = wait_for_crm(env, "one occurrence renamed in Outlook",
                     [&](const std::vector<crm_event>& es) {
                       return starts_of(es, "Standup, Outlook")
                                  == std::vector<std::string>{daily_starts[0]}
                              && starts_of(es, "Daily standup")
                                     == std::vector<std::string>{
                                         daily_starts[2]};
                     });
  CHECK(crmsync::test::eventually(
      [&] { return occurrence_at(daily_starts[1]).second == "Standup, CRM"; }));
  env.wait_converged();
  env.outlook_delete(occurrence_at(daily_starts[2]).first);
  crm = wait_for_crm(env, "the cancelled occurrence gone",
                     [&](const std::vector<crm_event>& es) {
                       return starts_of(es, "Daily standup").empty();
                     });
  CHECK(starts_of(crm, "Standup, Outlook").size() == 1);
  CHECK(starts_of(crm, "Standup, CRM").size() == 1);
  env.wait_converged();
  CHECK(crm.size() == 7);

  // Deleting a series removes its occurrences; the rest stays.
  env.outlook_delete(daily);
  crm = wait_for_crm(env, "the daily occurrences gone",
                     [&](const std::vector<crm_event>& es) {
                       return starts_of(es, "Standup, Outlook").empty()
                              && starts_of(es, "Standup, CRM").empty();
                     });
  CHECK(starts_of(crm, "Weekly review") == weekly_starts);
  CHECK(titled(env, "Single").size() == 1);
  env.wait_converged();
  env.outlook_delete(weekly);
  crm = wait_for_crm(env, "the weekly occurrences gone",
                     [&](const std::vector<crm_event>& es) {
                       return starts_of(es, "Weekly review").empty();
                     });
  CHECK(crm.size() == 1);
  env.wait_converged();
  env.wait_in_sync();
  auto s = env.status();
  CHECK(s.u64("/from_office365/created") == 9);
  CHECK(s.u64("/from_office365/deleted") == 9);
}

TEST_CASE("participants stay in the CRM and are not sent to Outlook",
          "[sync][fidelity][participants]") {
  sync_env env;
  // ADR 0004: Outlook would e-mail invitations to attendees, so crmsync
  // never sends the CRM's participants; an Outlook edit must not wipe them.
  auto meeting = env.create_event_json(
      "{\"title\":\"Contract review\",\"start\":" + json_str(hours_from_now(10))
      + ",\"end\":" + json_str(hours_from_now(11))
      + R"(,"participants":[{"email":"dana@fabrikam.example","name":"Dana"},"eve@fabrikam.example"]})");
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.wait_in_sync();
  auto o = o365_titled(env, cal, "Contract review");
  auto r = env.outlook_get(o.id);
  CHECK(r.size("/attendees") == 0);

  const std::vector<std::string> both{"dana@fabrikam.example",
                                      "eve@fabrikam.example"};
  env.outlook_rename(o.id, "Contract review (final)");
  auto e = wait_for_event(env, meeting, "renamed", [](const crm_event& x) {
    return x.title == "Contract review (final)";
  });
  CHECK(e.participants == both);
  CHECK(e.origin == "office365");
  auto later_start = hours_from_now(12), later_end = hours_from_now(13);
  env.outlook_patch(o.id, "{\"start\":" + graph_time(later_start, "UTC")
                              + ",\"end\":" + graph_time(later_end, "UTC")
                              + "}");
  e = wait_for_event(env, meeting, "moved", [&](const crm_event& x) {
    return x.start == later_start;
  });
  CHECK(e.participants == both);

  // A CRM change of the participants alone still sends none.
  env.patch_event(
      meeting,
      R"({"participants":["dana@fabrikam.example","eve@fabrikam.example","finn@fabrikam.example"]})");
  env.wait_for_status(
      [](const api_response& s) {
        return s.u64("/outbox") == 0 && s.u64("/to_office365/updated") >= 1;
      },
      "the participants change sent");
  CHECK(env.outlook_get(o.id).size("/attendees") == 0);
  CHECK(env.get_event(meeting).participants.size() == 3);
  env.wait_in_sync();
  env.wait_converged();
}
