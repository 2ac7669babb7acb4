// Conflict resolution under each tenant policy (sync/conflict.hpp).
#include <catch2/catch.hpp>

#include "sync/conflict.hpp"
#include "tests/sync/decide_support.hpp"

using namespace crmsync;
using namespace crmsync::sync;
using namespace crmsync::test;

namespace {

const calendar_paths paths{"oid-1", "cal-1"};

} // namespace

TEST_CASE("the conflict policy picks the winner", "[sync][conflict]") {
  auto now = now_ms();
  auto earlier = now - hour_ms;
  // latest: the later modification, a tie to the CRM.
  CHECK(conflict_winner(conflict_policy::latest, now, earlier) == side::crm);
  CHECK(conflict_winner(conflict_policy::latest, earlier, now)
        == side::office365);
  CHECK(conflict_winner(conflict_policy::latest, now, now) == side::crm);
  // crm and office365: that side, however recent the other.
  CHECK(conflict_winner(conflict_policy::crm, earlier, now) == side::crm);
  CHECK(conflict_winner(conflict_policy::office365, now, earlier)
        == side::office365);
}

TEST_CASE("when the CRM wins, its version is sent with If-Match Office 365's "
          "current changeKey, and the conflict is recorded",
          "[sync][conflict]") {
  auto now = now_ms();
  auto ours = event(7, "CRM title", now + day_ms, now + day_ms + hour_ms);
  ours.modified_ms = now - hour_ms;
  auto l = link(7, "g-7", "ck-old", 2);
  auto theirs = graph_item("g-7", "ck-new", "Outlook title", now + 2 * day_ms);
  theirs.modified_ms = now - 2 * hour_ms;
  auto r = resolve_conflict(conflict_policy::crm, owner, ours, l, theirs, paths,
                            now);
  CHECK(r.winner == side::crm);
  CHECK(r.patch.method == "PATCH");
  CHECK(r.patch.url == "/users/oid-1/events/g-7");
  CHECK(r.patch.body == to_graph(ours, false));
  CHECK(r.patch.headers == http::header_list{{"If-Match", "W/\"ck-new\""}});
  CHECK(r.record.user == owner);
  CHECK(r.record.event == event_id{7});
  CHECK(r.record.graph_id == "g-7");
  CHECK(r.record.at_ms == now);
  CHECK(r.record.policy == "crm");
  CHECK(r.record.winner == "crm");
  CHECK(r.record.kept == summary(ours));
  CHECK(r.record.lost == summary(theirs.content));
}

TEST_CASE("when Office 365 wins, its version goes to the tenant actor and "
          "nothing is sent",
          "[sync][conflict]") {
  auto now = now_ms();
  auto ours = event(7, "CRM title", now + day_ms, now + day_ms + hour_ms);
  ours.modified_ms = now - hour_ms;
  auto l = link(7, "g-7", "ck-old", 2);
  auto theirs = graph_item("g-7", "ck-new", "Outlook title", now + 2 * day_ms);
  theirs.modified_ms = now - 2 * hour_ms;
  auto r = resolve_conflict(conflict_policy::office365, owner, ours, l, theirs,
                            paths, now);
  CHECK(r.winner == side::office365);
  CHECK(r.patch.method.empty());
  CHECK(r.apply.owner == owner);
  CHECK(r.apply.event == event_id{7});
  CHECK(r.apply.content.title == "Outlook title");
  CHECK(r.apply.content.start_ms == now + 2 * day_ms);
  CHECK(r.record.policy == "office365");
  CHECK(r.record.winner == "office365");
  CHECK(r.record.kept == summary(theirs.content));
  CHECK(r.record.lost == summary(ours));
}

TEST_CASE("under the latest policy the later edit wins the conflict",
          "[sync][conflict]") {
  auto now = now_ms();
  auto ours = event(7, "CRM title", now + day_ms, now + day_ms + hour_ms);
  auto l = link(7, "g-7", "ck-old", 2);
  auto theirs = graph_item("g-7", "ck-new", "Outlook title", now + 2 * day_ms);
  ours.modified_ms = now - 2 * hour_ms;
  theirs.modified_ms = now - hour_ms;
  auto r = resolve_conflict(conflict_policy::latest, owner, ours, l, theirs,
                            paths, now);
  CHECK(r.winner == side::office365);
  CHECK(r.record.policy == "latest");
  ours.modified_ms = now - 30 * 60 * 1000;
  r = resolve_conflict(conflict_policy::latest, owner, ours, l, theirs, paths,
                       now);
  CHECK(r.winner == side::crm);
  CHECK(r.record.winner == "crm");
}
