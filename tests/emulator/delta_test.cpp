// graph-emulator's calendarView/delta (GRAPH-FACTS §4): a first round over
// a window, paged with `Prefer: odata.maxpagesize` through @odata.nextLink
// to an @odata.deltaLink; later rounds from the deltaLink bring what
// changed, deleted events and events moved out of the window as
// {"@removed":{"reason":"deleted"}}. Only the newest deltaLink of a chain
// is valid (an older one, or one evicted by the emulator, is 410
// SyncStateNotFound).
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/emulator/harness.hpp"

using namespace crmsync::emulator_test;

namespace {

const std::string december = "startDateTime=2026-12-01T00:00:00Z"
                             "&endDateTime=2027-01-01T00:00:00Z";

std::string removed_json(std::string_view id) {
  return R"({"@odata.type":"#microsoft.graph.event","id":")" + std::string{id}
         + R"(","@removed":{"reason":"deleted"}})";
}

/// One delta round: its pages, the items by id, and its deltaLink.
struct delta_round {
  std::vector<api_response> pages;
  std::map<std::string, std::string> items; ///< id -> minified JSON
  std::vector<std::string> ids;             ///< in the order received
  std::string delta_link;
};

class delta : public contoso {
public:
  explicit delta(const emulator_options& opts = {}) : contoso(opts) {
    cal = create_calendar("CRM");
  }

  std::string delta_path(std::string_view calendar) {
    return (calendar.empty() ? user_path(admin_id)
                             : calendar_path(admin_id, calendar))
           + "/calendarView/delta";
  }

  api_response page(std::string_view target, int max_page_size) {
    http::header_list h;
    if (max_page_size > 0)
      h.emplace_back("Prefer",
                     "odata.maxpagesize=" + std::to_string(max_page_size));
    return graph("GET", target, tok, {}, h);
  }

  /// Follows nextLinks verbatim from `first` to the deltaLink.
  delta_round run(std::string_view first, int max_page_size = 2) {
    delta_round out;
    std::string target{first};
    for (;;) {
      auto p = page(target, max_page_size);
      E2E_REQUIRE_STATUS(p, 200);
      REQUIRE(out.pages.size() < 50);
      CHECK(p.str("/@odata.context")
            == origin() + "/v1.0/$metadata#Collection(event)");
      CHECK(p.header("Preference-Applied") == "odata.track-changes");
      if (max_page_size > 0)
        CHECK(p.size("/value") <= static_cast<size_t>(max_page_size));
      for (size_t i = 0; i < p.size("/value"); ++i) {
        auto v = "/value/" + std::to_string(i);
        auto id = p.str(v + "/id");
        INFO("item " << p.json(v));
        CHECK(out.items.count(id) == 0); // each event once per round
        out.items[id] = p.json(v);
        out.ids.push_back(id);
      }
      out.pages.push_back(p);
      if (p.has("/@odata.deltaLink")) {
        CHECK_FALSE(p.has("/@odata.nextLink"));
        out.delta_link = p.str("/@odata.deltaLink");
        CHECK(starts_with(out.delta_link, origin()
                                              + std::string{raw_path(target)}
                                              + "?$deltatoken="));
        return out;
      }
      auto next = p.str("/@odata.nextLink");
      CHECK(starts_with(next, origin() + std::string{raw_path(target)}
                                  + "?$skiptoken="));
      target = target_of(next);
    }
  }

  delta_round follow(std::string_view delta_link, int max_page_size = 2) {
    return run(target_of(delta_link), max_page_size);
  }

  static std::string_view raw_path(std::string_view target) {
    return target.substr(0, target.find('?'));
  }

  std::string create(std::string_view calendar, std::string_view subject,
                     std::string_view start = "2026-12-01T10:00:00",
                     std::string_view end = "2026-12-01T11:00:00") {
    auto target = calendar.empty() ? events_path(admin_id)
                                   : calendar_events_path(admin_id, calendar);
    return create_event(target, event_body(subject, start, end)).str("/id");
  }

  api_response move(std::string_view id, std::string_view start,
                    std::string_view end) {
    auto r = patch(event_path(admin_id, id), tok,
                   R"({"start":{"dateTime":")" + std::string{start}
                       + R"(","timeZone":"UTC"},"end":{"dateTime":")"
                       + std::string{end} + R"(","timeZone":"UTC"}})");
    E2E_REQUIRE_STATUS(r, 200);
    return r;
  }

  std::string cal;
};

std::set<std::string> keys_of(const std::map<std::string, std::string>& m) {
  std::set<std::string> out;
  for (auto& [k, v] : m)
    out.insert(k);
  return out;
}

/// A service that compacts change logs from 8 entries on.
class small_log : public delta {
public:
  small_log() : delta(small_log_options()) {}

  static emulator_options small_log_options() {
    emulator_options o;
    o.change_log_floor = 8;
    return o;
  }

  uint64_t log_entries() {
    auto s = state();
    E2E_REQUIRE_STATUS(s, 200);
    return static_cast<uint64_t>(s.i64("/change_log_entries"));
  }
};

} // namespace

TEST_CASE_METHOD(delta, "delta: the first round pages every event once",
                 "[emulator][delta]") {
  std::set<std::string> in_window;
  for (int i = 0; i < 5; ++i)
    in_window.insert(create(cal, "e" + std::to_string(i),
                            "2026-12-0" + std::to_string(i + 1) + "T09:00:00",
                            "2026-12-0" + std::to_string(i + 1) + "T10:00:00"));
  create(cal, "before", "2026-11-20T09:00:00", "2026-11-20T10:00:00");
  create(cal, "after", "2027-01-05T09:00:00", "2027-01-05T10:00:00");
  create({}, "default calendar");

  auto first = run(delta_path(cal) + "?" + december);
  REQUIRE(first.pages.size() == 3);
  CHECK(first.pages[0].size("/value") == 2);
  CHECK(first.pages[1].size("/value") == 2);
  CHECK(first.pages[2].size("/value") == 1);
  CHECK(keys_of(first.items) == in_window);
  CHECK(first.ids.size() == 5);
  // Full events, not just ids.
  auto e = api_response::of_json(first.items.begin()->second);
  CHECK(starts_with(e.str("/subject"), "e"));
  CHECK(e.str("/@odata.etag") == "W/\"" + e.str("/changeKey") + "\"");
  CHECK(e.str("/start/timeZone") == "UTC");
  CHECK_FALSE(e.has("/@removed"));

  SECTION("without a page size, 10 a page") {
    for (int i = 0; i < 8; ++i)
      create(cal, "more" + std::to_string(i));
    auto r = run(delta_path(cal) + "?" + december, 0);
    REQUIRE(r.pages.size() == 2);
    CHECK(r.pages[0].size("/value") == 10);
    CHECK(r.pages[1].size("/value") == 3);
  }
  SECTION("the default calendar") {
    auto r = run(delta_path({}) + "?" + december);
    CHECK(r.items.size() == 1);
    CHECK(api_response::of_json(r.items.begin()->second).str("/subject")
          == "default calendar");
  }
  SECTION("an empty window") {
    auto r = run(delta_path(cal)
                 + "?startDateTime=2030-01-01T00:00:00Z"
                   "&endDateTime=2030-02-01T00:00:00Z");
    REQUIRE(r.pages.size() == 1);
    CHECK(r.items.empty());
  }
}

TEST_CASE_METHOD(delta, "delta: later rounds bring the changes",
                 "[emulator][delta]") {
  auto updated = create(cal, "to update");
  auto deleted = create(cal, "to delete");
  auto moved_out = create(cal, "to move out");
  auto untouched = create(cal, "untouched");
  auto outside
      = create(cal, "outside", "2027-02-01T10:00:00", "2027-02-01T11:00:00");
  auto first = run(delta_path(cal) + "?" + december);
  CHECK(keys_of(first.items)
        == std::set<std::string>{updated, deleted, moved_out, untouched});

  // Nothing changed: an empty round with a new link.
  auto quiet = follow(first.delta_link);
  REQUIRE(quiet.pages.size() == 1);
  CHECK(quiet.pages[0].size("/value") == 0);
  CHECK(quiet.delta_link != first.delta_link);

  advance(1min);
  auto created = create(cal, "created");
  auto patched
      = patch(event_path(admin_id, updated), tok, R"({"subject":"updated"})");
  E2E_REQUIRE_STATUS(patched, 200);
  // A second change of the same event still gives one item.
  patched = patch(event_path(admin_id, updated), tok,
                  R"({"subject":"updated twice"})");
  E2E_REQUIRE_STATUS(patched, 200);
  E2E_REQUIRE_STATUS(del(event_path(admin_id, deleted), tok), 204);
  move(moved_out, "2027-03-01T10:00:00", "2027-03-01T11:00:00");
  auto moved_in = move(outside, "2026-12-20T10:00:00", "2026-12-20T11:00:00");
  create({}, "another calendar");

  auto second = follow(quiet.delta_link);
  INFO("second round " << second.pages.back().body);
  CHECK(
      keys_of(second.items)
      == std::set<std::string>{created, updated, deleted, moved_out, outside});
  auto c = api_response::of_json(second.items[created]);
  CHECK(c.str("/subject") == "created");
  auto u = api_response::of_json(second.items[updated]);
  CHECK(u.str("/subject") == "updated twice");
  CHECK(u.str("/changeKey") == patched.str("/changeKey"));
  CHECK(u.str("/@odata.etag") == patched.str("/@odata.etag"));
  auto in = api_response::of_json(second.items[outside]);
  CHECK(in.str("/changeKey") == moved_in.str("/changeKey"));
  CHECK(in.str("/start/dateTime") == "2026-12-20T10:00:00.0000000");
  CHECK(second.items[deleted] == removed_json(deleted));
  CHECK(second.items[moved_out] == removed_json(moved_out));

  // Back to quiet.
  auto third = follow(second.delta_link);
  CHECK(third.items.empty());

  // An event created outside the window also shows as removed (Graph
  // reports changes outside the window that way; clients filter).
  create(cal, "far away", "2027-06-01T10:00:00", "2027-06-01T11:00:00");
  auto fourth = follow(third.delta_link);
  REQUIRE(fourth.items.size() == 1);
  CHECK(api_response::of_json(fourth.items.begin()->second).has("/@removed"));
}

TEST_CASE_METHOD(delta, "delta: only the newest deltaLink is valid",
                 "[emulator][delta]") {
  for (int i = 0; i < 3; ++i)
    create(cal, "e" + std::to_string(i));
  auto first = run(delta_path(cal) + "?" + december);
  auto second = follow(first.delta_link);

  // A replayed older link is gone.
  auto replay = page(target_of(first.delta_link), 2);
  check_error(replay, 410, "SyncStateNotFound");

  // The newest still works, and then is superseded in turn.
  auto third = follow(second.delta_link);
  check_error(page(target_of(second.delta_link), 2), 410, "SyncStateNotFound");

  // A link of one calendar is not valid on another.
  auto other = create_calendar("Other");
  auto token_part
      = third.delta_link.substr(third.delta_link.find("?$deltatoken="));
  check_error(page(delta_path(other) + token_part, 2), 410,
              "SyncStateNotFound");
  check_error(page(delta_path(cal) + "?$deltatoken=made-up", 2), 410,
              "SyncStateNotFound");

  SECTION("the emulator can evict every token") {
    auto r = send("POST", "/_emulator/evict-delta-tokens");
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.i64("/evicted") >= 1);
    check_error(page(target_of(third.delta_link), 2), 410, "SyncStateNotFound");
    // A full resync starts a new chain.
    auto again = run(delta_path(cal) + "?" + december);
    CHECK(again.items.size() == 3);
    auto next = follow(again.delta_link);
    CHECK(next.items.empty());
  }
  SECTION("the newest link survives unrelated rounds") {
    auto parallel = run(delta_path(cal) + "?" + december);
    CHECK(parallel.items.size() == 3);
    auto still = follow(third.delta_link);
    CHECK(still.items.empty());
  }
}

TEST_CASE_METHOD(delta, "delta: refusals", "[emulator][delta]") {
  for (std::string query :
       {std::string{}, std::string{"?startDateTime=2026-12-01T00:00:00Z"},
        std::string{"?endDateTime=2026-12-02T00:00:00Z"}}) {
    INFO("query '" << query << "'");
    check_error(page(delta_path(cal) + query, 2), 400, "ErrorInvalidParameter");
    check_error(page(delta_path({}) + query, 2), 400, "ErrorInvalidParameter");
  }
  check_error(page(delta_path("AAMkAnoSuchCalendar") + "?" + december, 2), 404,
              "ErrorItemNotFound");
  check_error(page(delta_path(cal) + "?$skiptoken=made-up", 2), 410,
              "SyncStateNotFound");
  check_error(graph("GET", delta_path(cal) + "?" + december, ""), 401,
              "InvalidAuthenticationToken");
}

TEST_CASE_METHOD(delta, "delta: a nextLink can be fetched again",
                 "[emulator][delta]") {
  // BUG: a round's nextLink is a cursor that advances when fetched, so a
  // client that retries a page (its answer was lost) silently skips the
  // page it never saw. Graph's $skiptoken links name a position and can
  // be fetched again.
  for (int i = 0; i < 6; ++i)
    create(cal, "e" + std::to_string(i));
  auto first = page(delta_path(cal) + "?" + december, 2);
  E2E_REQUIRE_STATUS(first, 200);
  auto next = target_of(first.str("/@odata.nextLink"));
  auto once = page(next, 2);
  E2E_REQUIRE_STATUS(once, 200);
  auto twice = page(next, 2);
  INFO("the first fetch gave " << once.body);
  E2E_REQUIRE_STATUS(twice, 200);
  CHECK(ids_of({twice}) == ids_of({once}));
}

TEST_CASE_METHOD(small_log, "delta: a change log below the floor is kept",
                 "[emulator][delta]") {
  // No delta token is live, yet writes below the floor (8) are not
  // compacted away one by one: compaction walks every token there is.
  auto before = log_entries();
  for (int i = 0; i < 7; ++i)
    create(cal, "below " + std::to_string(i));
  CHECK(log_entries() == before + 7);
  create(cal, "at the floor");
  CHECK(log_entries() < before + 8);
}

TEST_CASE_METHOD(small_log, "delta: the change log keeps what live tokens need",
                 "[emulator][delta]") {
  auto kept = create(cal, "kept");
  auto first = run(delta_path(cal) + "?" + december, 0);
  // With the token live, every write since it stays in the log, however
  // many compactions run: 40 writes, and one round still sees them all.
  std::set<std::string> written;
  for (int i = 0; i < 20; ++i) {
    auto id = create(cal, "burst " + std::to_string(i));
    written.insert(id);
    E2E_REQUIRE_STATUS(
        patch(event_path(admin_id, id), tok, R"({"subject":"patched"})"), 200);
  }
  CHECK(log_entries() >= 40);
  auto second = follow(first.delta_link, 0);
  CHECK(keys_of(second.items) == written);
  for (auto& [id, json] : second.items)
    CHECK(api_response::of_json(json).str("/subject") == "patched");

  // The log is compacted once it has doubled: what the newest token has
  // seen goes, what came after it stays.
  auto third = follow(second.delta_link, 0);
  CHECK(third.items.empty());
  auto before = log_entries();
  CHECK(before >= 40);
  for (int i = 0; i < 100; ++i)
    E2E_REQUIRE_STATUS(
        patch(event_path(admin_id, kept), tok, R"({"subject":"again"})"), 200);
  auto after = log_entries();
  CHECK(after >= 100);
  CHECK(after < before + 100);
  auto fourth = follow(third.delta_link, 0);
  REQUIRE(keys_of(fourth.items) == std::set<std::string>{kept});
  CHECK(api_response::of_json(fourth.items[kept]).str("/subject") == "again");

  // Without any live token, nothing is needed: the next compaction empties
  // the log, and it never grows past twice its size.
  E2E_REQUIRE_STATUS(send("POST", "/_emulator/evict-delta-tokens"), 200);
  for (int i = 0; i < 300; ++i)
    E2E_REQUIRE_STATUS(
        patch(event_path(admin_id, kept), tok, R"({"subject":"more"})"), 200);
  CHECK(log_entries() < 300);
}

TEST_CASE_METHOD(small_log,
                 "delta: the change log keeps what a round being paged needs",
                 "[emulator][delta]") {
  // A first round of 4 events, paged 2 at a time: while it is paged, its
  // deltaLink will stand for the log as it was when the round started, so
  // compaction must keep every write since (the round has no token yet).
  for (int i = 0; i < 4; ++i)
    create(cal, "before " + std::to_string(i));
  auto first = page(delta_path(cal) + "?" + december, 2);
  E2E_REQUIRE_STATUS(first, 200);
  auto next = target_of(first.str("/@odata.nextLink"));
  // 20 new events while it is paged: the log is compacted twice.
  std::set<std::string> during;
  for (int i = 0; i < 20; ++i)
    during.insert(create(cal, "during " + std::to_string(i)));
  auto rest = run(next, 2);
  auto after = follow(rest.delta_link, 0);
  CHECK(keys_of(after.items) == during);
}

TEST_CASE_METHOD(small_log, "delta: chains without a live token are dropped",
                 "[emulator][delta]") {
  // Compaction reads the calendar's own delta chains; a chain whose token
  // and round are gone (evicted, here) leaves that index at the next one.
  auto id = create(cal, "one");
  run(delta_path(cal) + "?" + december, 0);
  run(delta_path(cal) + "?" + december, 0);
  CHECK(state().i64("/delta_chains") == 2);
  for (int i = 0; i < 10; ++i)
    E2E_REQUIRE_STATUS(
        patch(event_path(admin_id, id), tok, R"({"subject":"x"})"), 200);
  CHECK(state().i64("/delta_chains") == 2); // both still live
  E2E_REQUIRE_STATUS(send("POST", "/_emulator/evict-delta-tokens"), 200);
  for (int i = 0; i < 20; ++i)
    E2E_REQUIRE_STATUS(
        patch(event_path(admin_id, id), tok, R"({"subject":"y"})"), 200);
  CHECK(state().i64("/delta_chains") == 0);
}
