// End-to-end: events (CRUD, versions, listing, all-day), import, mass update.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "tests/support/api_client.hpp"

using namespace crmsync::e2e;

namespace {

struct listed_event {
  std::string id;
  std::string start;
  std::string title;
  std::string json;
};

std::vector<listed_event> parse_items(const std::vector<std::string>& items) {
  std::vector<listed_event> out;
  for (auto& item : items) {
    simdjson::dom::parser p;
    simdjson::dom::element e = p.parse(item);
    listed_event x;
    x.id = std::string{e["id"].get_string().value()};
    x.start = std::string{e["start"].get_string().value()};
    x.title = std::string{e["title"].get_string().value()};
    x.json = item;
    out.push_back(std::move(x));
  }
  return out;
}

std::string two(int v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%02d", v);
  return buf;
}

// 2026-03-DD THH:MM:00Z for minute offset m from 2026-03-01T00:00:00Z.
std::string march_time(int m) {
  int day = 1 + m / (24 * 60);
  int hour = (m / 60) % 24;
  int minute = m % 60;
  return "2026-03-" + two(day) + "T" + two(hour) + ":" + two(minute) + ":00Z";
}

// The items joined with commas, as the members of a JSON array.
std::string comma_joined(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : ",") + items[i];
  return out;
}

// Acme with two standard users, Sam and Sue.
struct acme_team : acme_fixture {
  user_info sam
      = create_user(api, org.admin_token, org.id, "sam@acme.example", "Sam");
  user_info sue
      = create_user(api, org.admin_token, org.id, "sue@acme.example", "Sue");

  // POST .../events/import of `events` (event bodies) for `owner`.
  api_response import_events(const std::string& token, const std::string& owner,
                             const std::vector<std::string>& events) {
    return api.post(token, org_path(org.id) + "/events/import",
                    "{\"owner\":" + json_str(owner) + ",\"events\":["
                        + comma_joined(events) + "]}");
  }

  // POST .../events/mass-update applying `set` (a JSON object) to `ids`.
  api_response mass_update(const std::string& token,
                           const std::vector<std::string>& ids,
                           const std::string& set) {
    std::vector<std::string> quoted;
    for (auto& id : ids)
      quoted.push_back(json_str(id));
    return api.post(token, org_path(org.id) + "/events/mass-update",
                    "{\"ids\":[" + comma_joined(quoted) + "],\"set\":" + set
                        + "}");
  }
};

} // namespace

TEST_CASE_METHOD(acme_team,
                 "events: create, read, update with versions, delete, rights",
                 "[e2e][events]") {
  auto created = api.post(
      sam.token, user_events_path(org.id, sam.id),
      R"({"title":"Kick-off","start":"2026-11-26T14:00:00Z","end":"2026-11-26T15:30:00Z",)"
      R"("location":"Room 1","description":"Agenda:\n1. \"intro\"",)"
      R"("participants":["Pat@Example.COM",{"email":"Lee@example.com","name":"Lee"}]})");
  E2E_REQUIRE_STATUS(created, 201);
  const auto ev = created.str("/id");
  CHECK(ev.size() == 16);
  CHECK(created.str("/origin") == "individual");
  CHECK(created.i64("/version") == 1);
  CHECK(created.str("/owner") == sam.id);
  CHECK(created.str("/org_id") == org.id);
  CHECK(created.str("/title") == "Kick-off");
  CHECK(created.str("/start") == "2026-11-26T14:00:00Z");
  CHECK(created.str("/end") == "2026-11-26T15:30:00Z");
  CHECK_FALSE(created.boolean("/all_day"));
  CHECK(created.str("/location") == "Room 1");
  CHECK(created.str("/description") == "Agenda:\n1. \"intro\"");
  REQUIRE(created.size("/participants") == 2);
  CHECK(created.str("/participants/0/email") == "pat@example.com");
  CHECK(created.str("/participants/1/email") == "lee@example.com");
  CHECK(created.str("/participants/1/name") == "Lee");

  // Read back: identical.
  auto got = api.get(sam.token, event_path(org.id, ev));
  REQUIRE(got.status == 200);
  CHECK(got.json() == created.json());

  // Offsets are converted to UTC.
  auto offset = create_event(api, org.id, sam,
                             event_body("Offset", "2026-11-26T16:00:00+02:00",
                                        "2026-11-26T17:00:00.250+02:00"));
  CHECK(offset.str("/start") == "2026-11-26T14:00:00Z");
  CHECK(offset.str("/end") == "2026-11-26T15:00:00.250Z");

  // PATCH: version 2, still individual, other fields kept.
  auto p1 = api.patch(sam.token, event_path(org.id, ev),
                      R"({"title":"Kick-off moved"})");
  E2E_REQUIRE_STATUS(p1, 200);
  CHECK(p1.i64("/version") == 2);
  CHECK(p1.str("/origin") == "individual");
  CHECK(p1.str("/title") == "Kick-off moved");
  CHECK(p1.str("/start") == "2026-11-26T14:00:00Z");
  CHECK(p1.str("/location") == "Room 1");
  CHECK(p1.str("/created_at") == created.str("/created_at"));
  CHECK(p1.json("/participants") == created.json("/participants"));

  // Stale version: 409, nothing changed.
  auto stale = api.patch(sam.token, event_path(org.id, ev),
                         R"({"title":"Lost update","version":1})");
  CHECK(stale.status == 409);
  CHECK(stale.error_code() == "stale_version");
  CHECK(stale.error_field() == "version");
  auto after_stale = api.get(sam.token, event_path(org.id, ev));
  CHECK(after_stale.json() == p1.json());
  // A version from the future is stale as well.
  CHECK(api.patch(sam.token, event_path(org.id, ev),
                  R"({"title":"Future","version":7})")
            .status
        == 409);

  // Right version: 200, version 3.
  auto p2 = api.patch(
      sam.token, event_path(org.id, ev),
      R"({"start":"2026-11-26T15:00:00Z","end":"2026-11-26T16:00:00Z","version":2})");
  E2E_REQUIRE_STATUS(p2, 200);
  CHECK(p2.i64("/version") == 3);
  CHECK(p2.str("/start") == "2026-11-26T15:00:00Z");
  CHECK(p2.str("/title") == "Kick-off moved");
  // A patch making end < start is refused and leaves the event alone.
  auto bad_end = api.patch(sam.token, event_path(org.id, ev),
                           R"({"end":"2026-11-26T14:00:00Z"})");
  CHECK(bad_end.status == 400);
  CHECK(bad_end.error_field() == "end");
  CHECK(api.get(sam.token, event_path(org.id, ev)).json() == p2.json());

  // Rights: a standard user cannot touch another user's events.
  auto sue_patch = api.patch(sue.token, event_path(org.id, ev),
                             R"({"title":"Sue was here"})");
  CHECK(sue_patch.status == 403);
  CHECK(sue_patch.error_code() == "forbidden");
  auto sue_del = api.del(sue.token, event_path(org.id, ev));
  CHECK(sue_del.status == 403);
  auto sue_create = api.post(
      sue.token, user_events_path(org.id, sam.id),
      event_body("For Sam", "2026-11-27T09:00:00Z", "2026-11-27T10:00:00Z"));
  CHECK(sue_create.status == 403);
  CHECK(sue_create.error_code() == "forbidden");
  CHECK(api.get(sam.token, event_path(org.id, ev)).json() == p2.json());
  CHECK(walk_pages(api, sam.token, user_events_path(org.id, sam.id), 100).size()
        == 2);

  // ... an administrator can.
  auto admin_patch = api.patch(org.admin_token, event_path(org.id, ev),
                               R"({"location":"Room 2"})");
  REQUIRE(admin_patch.status == 200);
  CHECK(admin_patch.i64("/version") == 4);
  CHECK(admin_patch.str("/origin") == "individual");
  CHECK(admin_patch.str("/owner") == sam.id);
  auto admin_create = api.post(
      org.admin_token, user_events_path(org.id, sam.id),
      event_body("By admin", "2026-11-28T09:00:00Z", "2026-11-28T10:00:00Z"));
  REQUIRE(admin_create.status == 201);
  CHECK(admin_create.str("/owner") == sam.id);
  auto admin_del
      = api.del(org.admin_token, event_path(org.id, admin_create.str("/id")));
  CHECK(admin_del.status == 204);
  CHECK(api.get(sam.token, event_path(org.id, admin_create.str("/id"))).status
        == 404);
  // Events for a user that does not exist.
  auto ghost = api.post(
      org.admin_token, user_events_path(org.id, "00000000000000ab"),
      event_body("Ghost", "2026-11-28T09:00:00Z", "2026-11-28T10:00:00Z"));
  CHECK(ghost.status == 404);

  // DELETE with a stale ?version= → 409, still there.
  auto del_stale = api.del(sam.token, event_path(org.id, ev) + "?version=3");
  CHECK(del_stale.status == 409);
  CHECK(del_stale.error_code() == "stale_version");
  CHECK(api.get(sam.token, event_path(org.id, ev)).status == 200);
  // DELETE with the right version → 204, then 404.
  auto del_ok = api.del(sam.token, event_path(org.id, ev) + "?version=4");
  CHECK(del_ok.status == 204);
  CHECK(del_ok.body.empty());
  auto gone = api.get(sam.token, event_path(org.id, ev));
  CHECK(gone.status == 404);
  CHECK(gone.error_code() == "not_found");
  CHECK(api.del(sam.token, event_path(org.id, ev)).status == 404);
  CHECK(api.patch(sam.token, event_path(org.id, ev), R"({"title":"zombie"})")
            .status
        == 404);
  // DELETE without a version.
  CHECK(api.del(sam.token, event_path(org.id, offset.str("/id"))).status
        == 204);
  CHECK(walk_pages(api, sam.token, user_events_path(org.id, sam.id), 100)
            .empty());
  CHECK(api.get(org.admin_token, org_path(org.id)).i64("/events") == 0);
  CHECK(node.stop() == 0);
}

TEST_CASE_METHOD(
    acme_team,
    "events: listing by owner with from/to and cursor paging, all-day events",
    "[e2e][events][listing]") {
  // 250 events in shuffled order; starts 30 minutes apart except that
  // every tenth start is shared by two events (ties ordered by id).
  std::vector<int> minutes;
  for (int i = 0; i < 250; ++i)
    minutes.push_back(i % 10 == 1 ? (i - 1) * 30 : i * 30);
  std::mt19937 rng{12345};
  std::vector<int> order(250);
  for (int i = 0; i < 250; ++i)
    order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::map<std::string, int> minute_of; // id -> minute
  for (int i : order) {
    auto r = create_event(api, org.id, sam,
                          event_body("ev-" + std::to_string(i),
                                     march_time(minutes[i]),
                                     march_time(minutes[i] + 45)));
    minute_of[r.str("/id")] = minutes[i];
  }
  REQUIRE(minute_of.size() == 250);
  // One event for Sue: never in Sam's listing.
  auto sue_ev = create_event(
      api, org.id, sue, event_body("sue", march_time(100), march_time(110)));

  // Full walk with an odd page size.
  int pages = 0;
  auto all = parse_items(walk_pages(
      api, sam.token, user_events_path(org.id, sam.id), 37, 100, &pages));
  CHECK(pages == 7);
  REQUIRE(all.size() == 250);
  std::set<std::string> seen;
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(seen.insert(all[i].id).second);
    CHECK(minute_of.count(all[i].id) == 1);
    if (i > 0) {
      auto prev = minute_of[all[i - 1].id];
      auto cur = minute_of[all[i].id];
      CHECK(prev <= cur);
      if (prev == cur)
        CHECK(all[i - 1].id < all[i].id);
    }
    CHECK(all[i].start == march_time(minute_of[all[i].id]));
  }
  CHECK(seen.count(sue_ev.str("/id")) == 0);
  // A page size that splits pairs of equal starts gives the same sequence.
  auto small_pages = parse_items(walk_pages(
      api, sam.token, user_events_path(org.id, sam.id), 11, 100, &pages));
  CHECK(pages == 23);
  REQUIRE(small_pages.size() == all.size());
  for (size_t i = 0; i < all.size(); ++i)
    CHECK(small_pages[i].id == all[i].id);

  // The default limit is 100.
  auto first = api.get(sam.token, user_events_path(org.id, sam.id));
  REQUIRE(first.status == 200);
  CHECK(first.size("/items") == 100);
  CHECK_FALSE(first.is_null("/next_cursor"));
  auto max_page
      = api.get(sam.token, user_events_path(org.id, sam.id) + "?limit=1000");
  REQUIRE(max_page.status == 200);
  CHECK(max_page.size("/items") == 250);
  CHECK(max_page.is_null("/next_cursor"));

  // Window: from <= start < to. from and to both fall on shared starts.
  const int from_m = 600, to_m = 1800;
  std::set<std::string> in_window;
  for (auto& [id, m] : minute_of)
    if (m >= from_m && m < to_m)
      in_window.insert(id);
  auto window = parse_items(walk_pages(api, sam.token,
                                       user_events_path(org.id, sam.id)
                                           + "?from=" + march_time(from_m)
                                           + "&to=" + march_time(to_m),
                                       16));
  std::set<std::string> window_ids;
  for (auto& e : window) {
    CHECK(window_ids.insert(e.id).second);
    CHECK(minute_of[e.id] >= from_m);
    CHECK(minute_of[e.id] < to_m);
  }
  CHECK(window_ids == in_window);
  CHECK(window_ids.size() == 40);
  // Dates are accepted as bounds too.
  auto day2
      = api.get(sam.token, user_events_path(org.id, sam.id)
                               + "?from=2026-03-02&to=2026-03-03&limit=1000");
  REQUIRE(day2.status == 200);
  size_t expected_day2 = 0;
  for (auto& [id, m] : minute_of)
    if (m >= 1440 && m < 2880)
      ++expected_day2;
  CHECK(day2.size("/items") == expected_day2);
  // An empty window.
  auto empty = api.get(
      sam.token, user_events_path(org.id, sam.id)
                     + "?from=2027-01-01T00:00:00Z&to=2027-02-01T00:00:00Z");
  REQUIRE(empty.status == 200);
  CHECK(empty.size("/items") == 0);
  CHECK(empty.is_null("/next_cursor"));

  // Each page's items continue exactly after the previous page.
  auto p1 = api.get(sam.token, user_events_path(org.id, sam.id) + "?limit=5");
  REQUIRE(p1.status == 200);
  auto p2
      = api.get(sam.token, user_events_path(org.id, sam.id)
                               + "?limit=5&cursor=" + p1.str("/next_cursor"));
  REQUIRE(p2.status == 200);
  CHECK(p2.str("/items/0/id") == all[5].id);
  CHECK(p2.str("/items/4/id") == all[9].id);

  // All-day events: dates in and out, exclusive end.
  auto holiday = api.post(
      sam.token, user_events_path(org.id, sam.id),
      R"({"title":"Holiday","start":"2026-05-10","end":"2026-05-13","all_day":true})");
  E2E_REQUIRE_STATUS(holiday, 201);
  CHECK(holiday.boolean("/all_day"));
  CHECK(holiday.str("/start") == "2026-05-10");
  CHECK(holiday.str("/end") == "2026-05-13");
  CHECK(api.get(sam.token, event_path(org.id, holiday.str("/id"))).json()
        == holiday.json());
  auto one_day = api.post(
      sam.token, user_events_path(org.id, sam.id),
      R"({"title":"Day","start":"2026-05-20","end":"2026-05-21","all_day":true})");
  REQUIRE(one_day.status == 201);
  // end == start is not a valid all-day event (end is exclusive).
  auto zero = api.post(
      sam.token, user_events_path(org.id, sam.id),
      R"({"title":"Zero","start":"2026-05-20","end":"2026-05-20","all_day":true})");
  CHECK(zero.status == 400);
  CHECK(zero.error_field() == "end");
  // A time where a date is required, and a date where a time is.
  auto timed_all_day = api.post(
      sam.token, user_events_path(org.id, sam.id),
      R"({"title":"X","start":"2026-05-20T00:00:00Z","end":"2026-05-21","all_day":true})");
  CHECK(timed_all_day.status == 400);
  CHECK(timed_all_day.error_field() == "start");
  auto date_timed
      = api.post(sam.token, user_events_path(org.id, sam.id),
                 R"({"title":"X","start":"2026-05-20","end":"2026-05-21"})");
  CHECK(date_timed.status == 400);
  CHECK(date_timed.error_field() == "start");

  auto may = [&](const std::string& q) {
    auto r = api.get(sam.token, user_events_path(org.id, sam.id) + q);
    REQUIRE(r.status == 200);
    std::vector<std::string> titles;
    for (size_t i = 0; i < r.size("/items"); ++i)
      titles.push_back(r.str("/items/" + std::to_string(i) + "/title"));
    return titles;
  };
  using V = std::vector<std::string>;
  CHECK(may("?from=2026-05-01&to=2026-06-01") == V{"Holiday", "Day"});
  CHECK(may("?from=2026-05-10&to=2026-05-11") == V{"Holiday"});
  // Listing is by start: from after the start excludes a running event.
  CHECK(may("?from=2026-05-11&to=2026-05-21") == V{"Day"});
  // to is exclusive.
  CHECK(may("?from=2026-05-01T00:00:00Z&to=2026-05-10T00:00:00Z") == V{});
  CHECK(may("?from=2026-05-09T23:59:59Z&to=2026-05-10T00:00:01Z")
        == V{"Holiday"});

  // Turning an all-day event into a timed one via PATCH.
  auto to_timed = api.patch(
      sam.token, event_path(org.id, one_day.str("/id")),
      R"({"all_day":false,"start":"2026-05-20T09:00:00Z","end":"2026-05-20T10:00:00Z"})");
  REQUIRE(to_timed.status == 200);
  CHECK_FALSE(to_timed.boolean("/all_day"));
  CHECK(to_timed.str("/start") == "2026-05-20T09:00:00Z");
  CHECK(to_timed.i64("/version") == 2);
  // Moving an event moves it in the listing, too.
  CHECK(may("?from=2026-05-20T09:00:00Z&to=2026-05-20T09:00:01Z") == V{"Day"});
  auto moved = api.patch(
      sam.token, event_path(org.id, one_day.str("/id")),
      R"({"start":"2026-06-20T09:00:00Z","end":"2026-06-20T10:00:00Z"})");
  REQUIRE(moved.status == 200);
  CHECK(may("?from=2026-05-01&to=2026-06-01") == V{"Holiday"});
  CHECK(may("?from=2026-06-20&to=2026-06-21") == V{"Day"});
  CHECK(api.get(sam.token, user_events_path(org.id, sam.id) + "?limit=1000")
            .size("/items")
        == 252);

  // Far past, around the epoch (negative times) and far future: ordered,
  // bounded and formatted exactly.
  auto tim
      = create_user(api, org.admin_token, org.id, "tim@acme.example", "Tim");
  const std::vector<std::pair<std::string, std::string>> times{
      // as sent, as stored (sorted by time)
      {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
      {"1969-07-20T20:17:00Z", "1969-07-20T20:17:00Z"},
      {"1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"},
      {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"},
      {"1970-01-01T00:00:00.001Z", "1970-01-01T00:00:00.001Z"},
      {"2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00.500Z"},
      {"2026-01-01T00:30:00-14:00", "2026-01-01T14:30:00Z"},
      {"9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"},
  };
  for (size_t i = times.size(); i-- > 0;) {
    auto r = create_event(
        api, org.id, tim,
        event_body("t" + std::to_string(i), times[i].first, times[i].first));
    CHECK(r.str("/start") == times[i].second);
    CHECK(r.str("/end") == times[i].second);
  }
  auto tim_all = api.get(tim.token, user_events_path(org.id, tim.id));
  REQUIRE(tim_all.size("/items") == times.size());
  for (size_t i = 0; i < times.size(); ++i)
    CHECK(tim_all.str("/items/" + std::to_string(i) + "/start")
          == times[i].second);
  auto around_epoch = api.get(
      tim.token,
      user_events_path(org.id, tim.id)
          + "?from=1969-12-31T23:59:59.999Z&to=1970-01-01T00:00:00.001Z");
  REQUIRE(around_epoch.size("/items") == 2);
  CHECK(around_epoch.str("/items/0/title") == "t2");
  CHECK(around_epoch.str("/items/1/title") == "t3");
  CHECK(node.stop() == 0);
}

TEST_CASE_METHOD(acme_fixture,
                 "events: concurrent updates with the same version, one winner",
                 "[e2e][events][concurrency]") {
  auto ev = create_event(
      api, org,
      event_body("Contended", "2026-04-01T09:00:00Z", "2026-04-01T10:00:00Z"));
  const auto path = event_path(org.id, ev.str("/id"));
  constexpr int n = 8;
  std::vector<race_request> writes;
  for (int i = 0; i < n; ++i)
    writes.push_back(
        {"PATCH", path, org.admin_token,
         "{\"title\":\"writer " + std::to_string(i) + "\",\"version\":1}"});
  auto [results, errors] = send_at_once(node.port(), writes);
  int ok = 0;
  std::string winner_title;
  for (int i = 0; i < n; ++i) {
    INFO("writer " << i << ": " << results[i].describe() << " " << errors[i]);
    if (results[i].status == 200) {
      ++ok;
      CHECK(results[i].i64("/version") == 2);
      winner_title = results[i].str("/title");
    } else {
      CHECK(results[i].status == 409);
      CHECK(results[i].error_code() == "stale_version");
    }
  }
  CHECK(ok == 1);
  auto now = api.get(org.admin_token, path);
  CHECK(now.i64("/version") == 2);
  CHECK(now.str("/title") == winner_title);
  CHECK(node.stop() == 0);
}

TEST_CASE_METHOD(acme_team, "events: import and mass update",
                 "[e2e][events][import]") {
  std::vector<std::string> to_import;
  for (int i = 0; i < 5; ++i)
    to_import.push_back(
        event_body("imp-" + std::to_string(i), march_time(60 * (5 - i)),
                   march_time(60 * (5 - i) + 30),
                   ",\"location\":\"L" + std::to_string(i) + "\""));
  auto imported = import_events(org.admin_token, sam.id, to_import);
  E2E_REQUIRE_STATUS(imported, 201);
  REQUIRE(imported.size("/ids") == 5);
  std::vector<std::string> ids;
  for (size_t i = 0; i < 5; ++i)
    ids.push_back(imported.str("/ids/" + std::to_string(i)));
  // Ids in request order.
  for (size_t i = 0; i < 5; ++i) {
    auto e = api.get(sam.token, event_path(org.id, ids[i]));
    REQUIRE(e.status == 200);
    CHECK(e.str("/title") == "imp-" + std::to_string(i));
    CHECK(e.str("/origin") == "imported");
    CHECK(e.i64("/version") == 1);
    CHECK(e.str("/owner") == sam.id);
    CHECK(e.str("/location") == "L" + std::to_string(i));
  }
  // Listed (by start: reverse import order).
  auto listed = api.get(sam.token, user_events_path(org.id, sam.id));
  REQUIRE(listed.size("/items") == 5);
  for (size_t i = 0; i < 5; ++i)
    CHECK(listed.str("/items/" + std::to_string(i) + "/id") == ids[4 - i]);
  CHECK(api.get(sam.token, org_path(org.id)).i64("/events") == 5);

  // An owner may import for themself; another standard user may not.
  auto self_import
      = import_events(sam.token, sam.id,
                      {event_body("self", march_time(2000), march_time(2001))});
  CHECK(self_import.status == 201);
  auto foreign_import
      = import_events(sue.token, sam.id,
                      {event_body("nope", march_time(2000), march_time(2001))});
  CHECK(foreign_import.status == 403);
  // A bad event anywhere rejects the whole import, naming it.
  auto bad_import = import_events(
      org.admin_token, sam.id,
      {event_body("ok", march_time(1), march_time(2)),
       event_body("bad", "2026-03-01T25:00:00Z", march_time(2))});
  CHECK(bad_import.status == 400);
  CHECK(bad_import.error_field() == "events[1].start");
  auto end_before
      = import_events(org.admin_token, sam.id,
                      {event_body("ok", march_time(1), march_time(2)),
                       event_body("ok2", march_time(1), march_time(2)),
                       event_body("bad", march_time(5), march_time(2))});
  CHECK(end_before.status == 400);
  CHECK(end_before.error_field() == "events[2].end");
  auto unknown_owner
      = import_events(org.admin_token, "00000000000000cd",
                      {event_body("ok", march_time(1), march_time(2))});
  CHECK(unknown_owner.status == 404);
  CHECK(unknown_owner.error_field() == "owner");
  CHECK(api.get(sam.token, user_events_path(org.id, sam.id)).size("/items")
        == 6);
  CHECK(api.get(sam.token, org_path(org.id)).i64("/events") == 6);

  // Mass update of three imported events.
  auto mass = mass_update(org.admin_token, {ids[0], ids[1], ids[2]},
                          R"({"location":"Room 7"})");
  E2E_REQUIRE_STATUS(mass, 200);
  CHECK(mass.i64("/updated") == 3);
  for (size_t i = 0; i < 3; ++i) {
    auto e = api.get(sam.token, event_path(org.id, ids[i]));
    CHECK(e.str("/origin") == "mass_update");
    CHECK(e.i64("/version") == 2);
    CHECK(e.str("/location") == "Room 7");
    CHECK(e.str("/title") == "imp-" + std::to_string(i));
    CHECK(mass.json("/items/" + std::to_string(i)) == e.json());
  }
  // Untouched ones stay imported.
  auto e3 = api.get(sam.token, event_path(org.id, ids[3]));
  CHECK(e3.str("/origin") == "imported");
  CHECK(e3.i64("/version") == 1);
  CHECK(e3.str("/location") == "L3");

  // A PATCH makes a mass-updated and an imported event individual.
  auto p0 = api.patch(sam.token, event_path(org.id, ids[0]),
                      R"({"title":"mine now"})");
  REQUIRE(p0.status == 200);
  CHECK(p0.str("/origin") == "individual");
  CHECK(p0.i64("/version") == 3);
  auto p3 = api.patch(sam.token, event_path(org.id, ids[3]),
                      R"({"description":"edited"})");
  REQUIRE(p3.status == 200);
  CHECK(p3.str("/origin") == "individual");
  CHECK(p3.i64("/version") == 2);
  // ... and a later mass update takes it back to mass_update.
  auto again = mass_update(org.admin_token, {ids[0]}, R"({"title":"again"})");
  REQUIRE(again.status == 200);
  CHECK(again.str("/items/0/origin") == "mass_update");
  CHECK(again.i64("/items/0/version") == 4);

  // Unknown id in the middle: 404 naming ids[1]; nothing changed.
  std::vector<std::string> before;
  for (auto& id : ids)
    before.push_back(api.get(sam.token, event_path(org.id, id)).json());
  auto unknown
      = mass_update(org.admin_token, {ids[1], "00000000000000ef", ids[2]},
                    R"({"location":"Nowhere"})");
  CHECK(unknown.status == 404);
  CHECK(unknown.error_code() == "not_found");
  CHECK(unknown.error_field() == "ids[1]");
  // Unknown at the end: the earlier ones must not have been written either.
  auto unknown_last
      = mass_update(org.admin_token, {ids[1], ids[2], "00000000000000ef"},
                    R"({"location":"Nowhere"})");
  CHECK(unknown_last.status == 404);
  CHECK(unknown_last.error_field() == "ids[2]");
  // Listed twice.
  auto twice = mass_update(org.admin_token, {ids[1], ids[1]},
                           R"({"location":"Twice"})");
  CHECK(twice.status == 400);
  CHECK(twice.error_field() == "ids[1]");
  // A standard user over someone else's events.
  auto foreign = mass_update(sue.token, {ids[1]}, R"({"location":"Sue"})");
  CHECK(foreign.status == 403);
  // A change that makes one of them invalid rejects all.
  auto invalid = mass_update(org.admin_token, {ids[1], ids[2]},
                             R"({"end":"2026-03-01T03:00:00Z"})");
  CHECK(invalid.status == 400);
  CHECK(invalid.error_field() == "set.end");
  for (size_t i = 0; i < ids.size(); ++i)
    CHECK(api.get(sam.token, event_path(org.id, ids[i])).json() == before[i]);
  // The owner may mass-update their own events.
  auto own = mass_update(
      sam.token, {ids[4]},
      R"({"all_day":true,"start":"2026-03-01","end":"2026-03-02"})");
  REQUIRE(own.status == 200);
  CHECK(own.str("/items/0/start") == "2026-03-01");
  CHECK(own.boolean("/items/0/all_day"));
  CHECK(own.str("/items/0/origin") == "mass_update");
  CHECK(node.stop() == 0);
}
