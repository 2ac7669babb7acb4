// Applying one delta item (sync/apply.hpp): echoes, removals, upserts and
// the CRM side moving on meanwhile.
#include <catch2/catch.hpp>

#include "sync/apply.hpp"
#include "tests/sync/decide_support.hpp"

using namespace crmsync;
using namespace crmsync::sync;
using namespace crmsync::test;

TEST_CASE("crmsync's own write coming back is skipped by its changeKey",
          "[sync][apply]") {
  auto now = now_ms();
  auto l = link(7, "g-7", "ck-2", 3);
  auto echo
      = decide_item(graph_item("g-7", "ck-2", "Ours", now + day_ms), &l, owner);
  CHECK(echo.action == item_action::own_echo);
  // The same event changed in Outlook since: a change to apply.
  auto changed = decide_item(graph_item("g-7", "ck-3", "Edited", now + day_ms),
                             &l, owner);
  CHECK(changed.action == item_action::upsert);
}

TEST_CASE("a change to a linked event updates its CRM event at the version "
          "last synced",
          "[sync][apply]") {
  auto now = now_ms();
  auto l = link(7, "g-7", "ck-2", 3);
  auto item = graph_item("g-7", "ck-3", "Edited", now + 2 * day_ms);
  auto d = decide_item(item, &l, owner);
  REQUIRE(d.action == item_action::upsert);
  CHECK(d.command.owner == owner);
  CHECK(d.command.event == event_id{7});
  CHECK(d.command.expected_version == 3);
  CHECK(d.command.graph_id == "g-7");
  CHECK(d.command.change_key == "ck-3");
  CHECK(d.command.content.title == "Edited");
  CHECK(d.command.content.start_ms == now + 2 * day_ms);
  CHECK_FALSE(d.command.remove);
}

TEST_CASE("an event new in Outlook is created in the CRM with its Graph id",
          "[sync][apply]") {
  auto now = now_ms();
  auto d = decide_item(graph_item("g-new", "ck-1", "New", now + hour_ms),
                       nullptr, owner);
  REQUIRE(d.action == item_action::upsert);
  CHECK(d.command.event == event_id{});
  CHECK(d.command.expected_version == 0);
  CHECK(d.command.graph_id == "g-new");
  CHECK(d.command.change_key == "ck-1");
  CHECK(d.command.content.title == "New");
}

TEST_CASE("a removal is confirmed before the CRM event goes, an unlinked "
          "one and series masters are left alone",
          "[sync][apply]") {
  auto now = now_ms();
  auto l = link(7, "g-7", "ck-2", 3);
  auto removed = graph_item("g-7", "", "", 0);
  removed.removed = true;
  CHECK(decide_item(removed, &l, owner).action == item_action::confirm_removal);
  CHECK(decide_item(removed, nullptr, owner).action == item_action::ignore);
  auto master = graph_item("g-8", "ck-9", "Weekly", now + day_ms);
  master.type = "seriesMaster";
  CHECK(decide_item(master, nullptr, owner).action == item_action::ignore);

  CHECK(after_confirm(200) == removal_action::keep); // moved out of window
  CHECK(after_confirm(404) == removal_action::delete_in_crm);
  CHECK(after_confirm(403) == removal_action::error);
  CHECK(after_confirm(503) == removal_action::error);
  CHECK(after_confirm(0) == removal_action::error); // no answer
}

TEST_CASE("an update the CRM refuses because its side moved on is left to "
          "the outbox",
          "[sync][apply]") {
  // By the tenant actor's error code, never its sentence.
  CHECK(crm_moved_on("stale_version"));
  CHECK(crm_moved_on("not_found"));
  CHECK_FALSE(crm_moved_on("the CRM event changed since the last sync"));
  CHECK_FALSE(crm_moved_on("request_timeout"));
  CHECK_FALSE(crm_moved_on("storage_failure"));
  CHECK_FALSE(crm_moved_on(""));
}

TEST_CASE("an applied item leaves a link to the CRM's new version",
          "[sync][apply]") {
  auto now = now_ms();
  auto item = graph_item("g-7", "ck-3", "Edited", now + day_ms);
  auto applied = event(7, "Edited", now + day_ms, now + day_ms + hour_ms);
  applied.version = 4;
  auto l = link_after_upsert(item, applied);
  CHECK(l.event == event_id{7});
  CHECK(l.graph_id == "g-7");
  CHECK(l.change_key == "ck-3");
  CHECK(l.crm_version == 4);
}
