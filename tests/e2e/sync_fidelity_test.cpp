// End-to-end: what an event looks like after it crossed between the CRM
// and Outlook (issue 5): notifications that arrive out of order, all-day
// events, time zones (Windows and IANA names, across a DST change),
// recurring series made in Outlook, and participants. Each case ends with
// the convergence checker (crmsyncctl check ORG) finding no difference.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/time_format.hpp"
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

/// The starts of the CRM events titled `title`, in order.
std::vector<std::string> starts_of(const std::vector<crm_event>& es,
                                   const std::string& title) {
  std::vector<std::string> out;
  for (auto& e : es)
    if (e.title == title)
      out.push_back(e.start);
  std::sort(out.begin(), out.end());
  return out;
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

/// start/end of a Graph event as read in `zone`: "YYYY-MM-DDTHH:MM:SS".
std::pair<std::string, std::string> wall_times(const api_response& r) {
  return {r.str("/start/dateTime").substr(0, 19),
          r.str("/end/dateTime").substr(0, 19)};
}

// -- dates relative to now ---------------------------------------------------
// The node syncs a window around now (a year back, two years ahead), so
// every date here is computed from the clock. The cases that need calendar
// facts (a DST change, Mondays) take them from the year after the current
// one: its days lie between a week and two years ahead, whenever this runs.

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/// One calendar day, as days since 1970-01-01.
struct day {
  int64_t n;

  day plus(int64_t days) const {
    return {n + days};
  }
  /// 0 = Sunday.
  int weekday() const {
    return static_cast<int>(((n % 7) + 11) % 7);
  }
  /// "YYYY-MM-DD".
  std::string date() const {
    return crmsync::format_date(n * 86400000);
  }
  /// "YYYY-MM-DDTHH:MM:00" (a wall time, no zone).
  std::string at(int hour, int minute = 0) const {
    char buf[16];
    std::snprintf(buf, sizeof buf, "T%02d:%02d:00", hour, minute);
    return date() + buf;
  }
  /// at(hour, minute) in UTC: "YYYY-MM-DDTHH:MM:00Z".
  std::string utc(int hour, int minute = 0) const {
    return at(hour, minute) + "Z";
  }
};

/// The year after the current one (UTC).
int64_t next_year() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  return tm.tm_year + 1900 + 1;
}

/// `month`/`d` of next_year().
day in_next_year(int month, int d) {
  return {days_from_civil(next_year(), month, d)};
}

/// The US change to daylight time in next_year(): March's second Sunday.
day us_dst_change() {
  auto first = in_next_year(3, 1);
  return first.plus((7 - first.weekday()) % 7 + 7);
}

/// The EU change to summer time in next_year(): March's last Sunday.
day eu_dst_change() {
  auto last = in_next_year(3, 31);
  return last.plus(-last.weekday());
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

TEST_CASE("delayed notifications arrive after later changes, the CRM ends "
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
  // Days of next year: all-day events need dates, not times.
  auto d = [](int month, int day) {
    return in_next_year(month, day).date();
  };
  // CRM all-day events: one day in UTC, several days in Berlin and Tokyo
  // (east of UTC: a zone offset would move it to the day before).
  auto one = env.create_event_json(R"({"title":"Offsite","start":")" + d(3, 10)
                                   + R"(","end":")" + d(3, 11)
                                   + R"(","all_day":true})");
  auto berlin = env.create_event_json(
      R"({"title":"Trade fair","start":")" + d(4, 5) + R"(","end":")" + d(4, 8)
      + R"(","all_day":true,"time_zone":"Europe/Berlin"})");
  auto tokyo = env.create_event_json(
      R"({"title":"Tokyo visit","start":")" + d(4, 12) + R"(","end":")"
      + d(4, 14) + R"(","all_day":true,"time_zone":"Tokyo Standard Time"})");
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.wait_in_sync();

  struct expect {
    std::string title, zone, start, end;
  };
  for (auto& x :
       {expect{"Offsite", "UTC", d(3, 10), d(3, 11)},
        expect{"Trade fair", "Europe/Berlin", d(4, 5), d(4, 8)},
        expect{"Tokyo visit", "Tokyo Standard Time", d(4, 12), d(4, 14)}}) {
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
  env.outlook_create_json(cal, graph_body("Holiday", d(5, 3) + "T00:00:00",
                                          d(5, 4) + "T00:00:00",
                                          "Pacific Standard Time", true));
  auto trip = env.outlook_create_json(
      cal, graph_body("Kyoto trip", d(5, 10) + "T00:00:00",
                      d(5, 13) + "T00:00:00", "Tokyo Standard Time", true));
  auto holiday = wait_for_title(env, "Holiday");
  CHECK(holiday.all_day);
  CHECK(holiday.start == d(5, 3));
  CHECK(holiday.end == d(5, 4));
  CHECK(holiday.time_zone == "Pacific Standard Time");
  CHECK(holiday.origin == "office365");
  auto kyoto = wait_for_title(env, "Kyoto trip");
  CHECK(kyoto.all_day);
  CHECK(kyoto.start == d(5, 10));
  CHECK(kyoto.end == d(5, 13));
  CHECK(kyoto.time_zone == "Tokyo Standard Time");

  // Outlook moves the trip by a day; the CRM moves the offsite and makes
  // it two days.
  env.outlook_patch(
      trip, "{\"isAllDay\":true,\"start\":"
                + graph_time(d(5, 11) + "T00:00:00", "Tokyo Standard Time")
                + ",\"end\":"
                + graph_time(d(5, 14) + "T00:00:00", "Tokyo Standard Time")
                + "}");
  kyoto
      = wait_for_event(env, kyoto.id, "moved a day later",
                       [&](const crm_event& e) { return e.start == d(5, 11); });
  CHECK(kyoto.end == d(5, 14));
  CHECK(kyoto.all_day);
  env.patch_event(one, R"({"start":")" + d(3, 12) + R"(","end":")" + d(3, 14)
                           + R"("})");
  env.wait_in_sync();
  auto moved = o365_titled(env, cal, "Offsite");
  CHECK(moved.start == d(3, 12));
  CHECK(moved.end == d(3, 14));
  CHECK(moved.all_day);
  // An all-day event Outlook renamed keeps its days and zone.
  auto fair = o365_titled(env, cal, "Trade fair");
  env.outlook_rename(fair.id, "Trade fair (booth 4)");
  auto renamed = wait_for_event(env, berlin, "renamed", [](const crm_event& e) {
    return e.title == "Trade fair (booth 4)";
  });
  CHECK(renamed.all_day);
  CHECK(renamed.start == d(4, 5));
  CHECK(renamed.end == d(4, 8));
  CHECK(renamed.time_zone == "Europe/Berlin");
  CHECK(env.get_event(tokyo).start == d(4, 12));
  env.wait_in_sync();
  env.wait_converged();
}

TEST_CASE("time zones survive the round trip, across a DST change",
          "[sync][fidelity][zones]") {
  sync_env env;
  // Next year's changes to summer time: the EU's (Berlin: CET, UTC+1, to
  // CEST, UTC+2) and the US's (Seattle: PST, UTC-8, to PDT, UTC-7).
  const auto eu = eu_dst_change(), us = us_dst_change();
  INFO("EU change " << eu.date() << ", US change " << us.date());
  REQUIRE(eu.weekday() == 0);
  REQUIRE(us.weekday() == 0);
  // 10:00 in Berlin two days before and a day after the EU change, 10:00
  // in Seattle a day after the US change.
  auto timed = [](std::string_view title, const std::string& start,
                  const std::string& end, std::string_view zone) {
    return "{\"title\":" + json_str(title) + ",\"start\":" + json_str(start)
           + ",\"end\":" + json_str(end) + ",\"time_zone\":" + json_str(zone)
           + "}";
  };
  auto standup
      = env.create_event_json(timed("Berlin standup", eu.plus(-2).utc(9),
                                    eu.plus(-2).utc(9, 30), "Europe/Berlin"));
  auto review = env.create_event_json(timed(
      "Berlin review", eu.plus(1).utc(8), eu.plus(1).utc(9), "Europe/Berlin"));
  env.create_event_json(timed("Seattle sync", us.plus(1).utc(17),
                              us.plus(1).utc(18), "Pacific Standard Time"));
  // A zone name Graph does not know goes as UTC instead of failing.
  env.create_event_json(timed("Nowhere", us.plus(2).utc(12), us.plus(2).utc(13),
                              "Mars/Olympus_Mons"));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.wait_in_sync();

  struct expect {
    std::string title, zone, start, end;
  };
  for (auto& x :
       {expect{"Berlin standup", "Europe/Berlin", eu.plus(-2).at(10),
               eu.plus(-2).at(10, 30)},
        expect{"Berlin review", "Europe/Berlin", eu.plus(1).at(10),
               eu.plus(1).at(11)},
        expect{"Seattle sync", "Pacific Standard Time", us.plus(1).at(10),
               us.plus(1).at(11)},
        expect{"Nowhere", "UTC", us.plus(2).at(12), us.plus(2).at(13)}}) {
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
      cal, graph_body("Call from Seattle", us.plus(-2).at(9),
                      us.plus(-2).at(10), "Pacific Standard Time"));
  env.outlook_create_json(cal, graph_body("Seattle after DST", us.plus(2).at(9),
                                          us.plus(2).at(10),
                                          "Pacific Standard Time"));
  auto pune = env.outlook_create_json(
      cal, graph_body("Pune demo", us.plus(6).at(15), us.plus(6).at(16, 30),
                      "Asia/Kolkata"));
  auto r = env.outlook_get(call, "Pacific Standard Time");
  CHECK(r.str("/start/timeZone") == "Pacific Standard Time");
  CHECK(wall_times(r).first == us.plus(-2).at(9));

  auto c = wait_for_title(env, "Call from Seattle");
  CHECK(c.start == us.plus(-2).utc(17)); // PST, UTC-8
  CHECK(c.end == us.plus(-2).utc(18));
  CHECK(c.time_zone == "Pacific Standard Time");
  auto after = wait_for_title(env, "Seattle after DST");
  CHECK(after.start == us.plus(2).utc(16)); // PDT, UTC-7
  CHECK(after.time_zone == "Pacific Standard Time");
  auto p = wait_for_title(env, "Pune demo");
  CHECK(p.start == us.plus(6).utc(9, 30)); // IST, UTC+5:30
  CHECK(p.end == us.plus(6).utc(11));
  CHECK(p.time_zone == "Asia/Kolkata");

  // Edits on either side keep the zone. The CRM moves the Seattle call
  // past the US change: 09:00 is now 16:00 UTC.
  env.patch_event(c.id, R"({"start":")" + us.plus(5).utc(16) + R"(","end":")"
                            + us.plus(5).utc(17) + R"("})");
  env.patch_event(review, R"({"title":"Berlin review, room 2"})");
  env.wait_in_sync();
  r = env.outlook_get(call, "Pacific Standard Time");
  CHECK(r.str("/originalStartTimeZone") == "Pacific Standard Time");
  CHECK(wall_times(r).first == us.plus(5).at(9));
  CHECK(wall_times(r).second == us.plus(5).at(10));
  auto rv = o365_titled(env, cal, "Berlin review, room 2");
  CHECK(rv.time_zone == "Europe/Berlin");
  CHECK(wall_times(env.outlook_get(rv.id, "Europe/Berlin")).first
        == eu.plus(1).at(10));
  // Outlook renames the standup and moves the demo in its own zone.
  env.outlook_rename(o365_titled(env, cal, "Berlin standup").id,
                     "Berlin standup (video)");
  env.outlook_patch(
      pune, "{\"start\":" + graph_time(us.plus(7).at(11), "Asia/Kolkata")
                + ",\"end\":" + graph_time(us.plus(7).at(12), "Asia/Kolkata")
                + "}");
  auto s = wait_for_event(env, standup, "renamed", [](const crm_event& e) {
    return e.title == "Berlin standup (video)";
  });
  CHECK(s.time_zone == "Europe/Berlin");
  CHECK(s.start == eu.plus(-2).utc(9));
  p = wait_for_event(env, p.id, "moved", [&](const crm_event& e) {
    return e.start == us.plus(7).utc(5, 30);
  });
  CHECK(p.end == us.plus(7).utc(6, 30));
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

  // Daily, five times, in UTC, from January 11th of next year; weekly on
  // Mondays 09:00 Pacific time, four times, across next year's US change
  // to daylight time (a Sunday: the Mondays 13 and 6 days before it, and
  // 1 and 8 days after it).
  const auto first = in_next_year(1, 11);
  const auto us = us_dst_change();
  const auto monday = us.plus(-13);
  INFO("daily from " << first.date() << ", weekly from " << monday.date());
  REQUIRE(monday.weekday() == 1);
  auto daily_range = [&](int count) {
    return R"("recurrence":{"pattern":{"type":"daily","interval":1},"range":{"type":"numbered","startDate":")"
           + first.date() + R"(","numberOfOccurrences":)"
           + std::to_string(count) + "}}";
  };
  auto daily = env.outlook_create_json(
      cal, R"({"subject":"Daily sync","start":)"
               + graph_time(first.at(9), "UTC")
               + ",\"end\":" + graph_time(first.at(9, 15), "UTC") + ","
               + daily_range(5) + "}");
  auto weekly = env.outlook_create_json(
      cal,
      R"({"subject":"Weekly review","start":)"
          + graph_time(monday.at(9), "Pacific Standard Time")
          + ",\"end\":" + graph_time(monday.at(10), "Pacific Standard Time")
          + R"(,"recurrence":{"pattern":{"type":"weekly","interval":1,"daysOfWeek":["monday"]},"range":{"type":"endDate","startDate":")"
          + monday.date() + R"(","endDate":")" + us.plus(8).date() + R"("}}})");

  const std::vector<std::string> daily_starts{
      first.utc(9), first.plus(1).utc(9), first.plus(2).utc(9),
      first.plus(3).utc(9), first.plus(4).utc(9)};
  // 09:00 PST is 17:00 UTC, 09:00 PDT 16:00 UTC.
  const std::vector<std::string> weekly_starts{
      monday.utc(17), monday.plus(7).utc(17), monday.plus(14).utc(16),
      monday.plus(21).utc(16)};
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
  env.outlook_patch(daily, "{" + daily_range(3) + "}");
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
                   + "/calendarView?startDateTime=" + first.plus(-10).utc(0)
                   + "&endDateTime=" + first.plus(21).utc(0) + "&$top=100");
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

TEST_CASE("monthly and yearly series made in Outlook reach the CRM on "
          "Outlook's days, and an occurrence edited in the CRM goes back",
          "[sync][fidelity][series]") {
  sync_options opts;
  opts.graph_latency_ms = 100;
  opts.graph_jitter_ms = 30;
  sync_env env{opts};
  env.create_event("Single", hours_from_now(5), hours_from_now(6));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();

  // Next year's months (the yearly series start in this year, whose days
  // lie within the sync window's year back, and end in the next one).
  const int64_t y = next_year();
  auto date = [](int64_t yy, int64_t m, int64_t d) {
    return day{days_from_civil(yy, m, d)};
  };
  auto month_end = [&](int64_t yy, int64_t m) {
    return date(m == 12 ? yy + 1 : yy, m == 12 ? 1 : m + 1, 1).plus(-1);
  };
  auto last_weekday = [&](int64_t yy, int64_t m, int wd) {
    auto d = month_end(yy, m);
    while (d.weekday() != wd)
      d = d.plus(-1);
    return d;
  };
  auto nth_weekday = [&](int64_t yy, int64_t m, int wd, int n) {
    auto d = date(yy, m, 1);
    while (d.weekday() != wd)
      d = d.plus(1);
    return d.plus(7 * (n - 1));
  };
  auto series = [&](const std::string& subject, const day& first,
                    const std::string& recurrence) {
    return env.outlook_create_json(
        cal, "{\"subject\":" + json_str(subject)
                 + ",\"start\":" + graph_time(first.at(9), "UTC")
                 + ",\"end\":" + graph_time(first.at(10), "UTC")
                 + ",\"recurrence\":" + recurrence + "}");
  };
  // The 31st, four times from January: February's is its last day.
  series(
      "Month end", date(y, 1, 31),
      R"({"pattern":{"type":"absoluteMonthly","interval":1,"dayOfMonth":31},)"
      R"("range":{"type":"numbered","startDate":")"
          + date(y, 1, 31).date() + R"(","numberOfOccurrences":4}})");
  // The last Friday of January to April.
  auto fridays = series(
      "Last Friday", date(y, 1, 1),
      R"({"pattern":{"type":"relativeMonthly","interval":1,"daysOfWeek":["friday"],"index":"last"},)"
      R"("range":{"type":"endDate","startDate":")"
          + date(y, 1, 1).date() + R"(","endDate":")" + date(y, 4, 30).date()
          + R"("}})");
  // 29 February, this year and next (the 28th in a year without it).
  series(
      "Leap day", date(y - 1, 1, 1),
      R"({"pattern":{"type":"absoluteYearly","interval":1,"month":2,"dayOfMonth":29},)"
      R"("range":{"type":"numbered","startDate":")"
          + date(y - 1, 1, 1).date() + R"(","numberOfOccurrences":2}})");
  // The fourth Thursday of November, this year and next.
  series(
      "Thanksgiving", date(y - 1, 1, 1),
      R"({"pattern":{"type":"relativeYearly","interval":1,"month":11,"daysOfWeek":["thursday"],"index":"fourth"},)"
      R"("range":{"type":"numbered","startDate":")"
          + date(y - 1, 1, 1).date() + R"(","numberOfOccurrences":2}})");

  const std::vector<std::string> month_ends{
      date(y, 1, 31).utc(9), month_end(y, 2).utc(9), date(y, 3, 31).utc(9),
      date(y, 4, 30).utc(9)};
  const std::vector<std::string> last_fridays{
      last_weekday(y, 1, 5).utc(9), last_weekday(y, 2, 5).utc(9),
      last_weekday(y, 3, 5).utc(9), last_weekday(y, 4, 5).utc(9)};
  const std::vector<std::string> leap_days{month_end(y - 1, 2).utc(9),
                                           month_end(y, 2).utc(9)};
  const std::vector<std::string> thanksgivings{
      nth_weekday(y - 1, 11, 4, 4).utc(9), nth_weekday(y, 11, 4, 4).utc(9)};
  auto crm
      = wait_for_crm(env, "every occurrence of the four series",
                     [&](const std::vector<crm_event>& es) {
                       return starts_of(es, "Month end") == month_ends
                              && starts_of(es, "Last Friday") == last_fridays
                              && starts_of(es, "Leap day") == leap_days
                              && starts_of(es, "Thanksgiving") == thanksgivings;
                     });
  CHECK(crm.size() == 13);
  env.wait_converged();

  // One occurrence renamed in the CRM becomes an exception of its series
  // in Outlook; the others keep the series' subject.
  std::string second_friday;
  for (auto& e : crm)
    if (e.title == "Last Friday" && e.start == last_fridays[1])
      second_friday = e.id;
  REQUIRE_FALSE(second_friday.empty());
  E2E_REQUIRE_STATUS(
      env.patch_event(second_friday, R"({"title":"Last Friday, moved"})"), 200);
  auto subjects_in_outlook = [&] {
    auto view = env.graph(
        "GET", "/users/admin@contoso.com/calendars/" + cal
                   + "/calendarView?startDateTime=" + date(y, 1, 1).utc(0)
                   + "&endDateTime=" + date(y, 5, 1).utc(0) + "&$top=100");
    E2E_REQUIRE_STATUS(view, 200);
    std::map<std::string, std::string> out; // start -> subject
    for (size_t i = 0; i < view.size("/value"); ++i) {
      auto at = "/value/" + std::to_string(i);
      if (view.str(at + "/seriesMasterId") == fridays)
        out[view.str(at + "/start/dateTime").substr(0, 19) + "Z"]
            = view.str(at + "/subject");
    }
    return out;
  };
  CHECK(crmsync::test::eventually([&] {
    auto seen = subjects_in_outlook();
    return seen.size() == 4 && seen[last_fridays[1]] == "Last Friday, moved"
           && seen[last_fridays[0]] == "Last Friday"
           && seen[last_fridays[2]] == "Last Friday";
  }));
  env.wait_converged();

  // Deleting a series in Outlook removes its occurrences, the edited one
  // too.
  env.outlook_delete(fridays);
  crm = wait_for_crm(env, "the Friday occurrences gone",
                     [&](const std::vector<crm_event>& es) {
                       return starts_of(es, "Last Friday").empty()
                              && starts_of(es, "Last Friday, moved").empty();
                     });
  CHECK(starts_of(crm, "Month end") == month_ends);
  CHECK(crm.size() == 9);
  env.wait_converged();
}
