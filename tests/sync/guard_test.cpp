// The mass-delete guard's arithmetic (sync/guard.hpp).
#include <catch2/catch.hpp>

#include <string>

#include "sync/guard.hpp"
#include "tests/sync/decide_support.hpp"

using namespace crmsync::sync;
using crmsync::test::now_ms;

namespace {

constexpr int64_t minute_ms = 60 * 1000;

guard_config config() {
  guard_config c;
  c.share = 0.5;
  c.minimum = 10;
  c.window_ms = 10 * minute_ms;
  return c;
}

} // namespace

TEST_CASE("deleting exactly the allowed share goes ahead, one more is held",
          "[sync][guard]") {
  auto now = now_ms();
  // 20 synced: 10 is half, allowed; 11 is more than half.
  auto at_share = judge_deletes(10, 20, false, {now, 0}, now, config());
  CHECK_FALSE(at_share.hold);
  CHECK(at_share.total == 10);
  CHECK(at_share.synced == 20);
  auto above = judge_deletes(11, 20, false, {now, 0}, now, config());
  CHECK(above.hold);
  CHECK(above.total == 11);
  CHECK(above.synced == 20);
}

TEST_CASE("fewer deletions than the minimum are never held, the minimum is",
          "[sync][guard]") {
  auto now = now_ms();
  CHECK_FALSE(judge_deletes(9, 9, false, {now, 0}, now, config()).hold);
  CHECK(judge_deletes(10, 10, false, {now, 0}, now, config()).hold);
}

TEST_CASE("deletions add up over the window, an expired window starts again",
          "[sync][guard]") {
  auto now = now_ms();
  // 8 deleted 5 minutes ago, 12 still synced: 3 more make 11 of 20.
  delete_window recent{now - 5 * minute_ms, 8};
  auto v = judge_deletes(3, 12, false, recent, now, config());
  CHECK(v.hold);
  CHECK(v.total == 11);
  CHECK(v.synced == 20);
  CHECK(v.window.start_ms == recent.start_ms);
  CHECK(v.window.count == 8);
  // The same 8 deleted 11 minutes ago no longer count.
  delete_window old{now - 11 * minute_ms, 8};
  v = judge_deletes(3, 12, false, old, now, config());
  CHECK_FALSE(v.hold);
  CHECK(v.total == 3);
  CHECK(v.window.start_ms == now);
  CHECK(v.window.count == 0);
}

TEST_CASE("an approved run and one that deletes nothing go ahead with the "
          "window unchanged",
          "[sync][guard]") {
  auto now = now_ms();
  delete_window old{now - 11 * minute_ms, 8};
  auto approved = judge_deletes(100, 100, true, old, now, config());
  CHECK_FALSE(approved.hold);
  CHECK(approved.window.start_ms == old.start_ms);
  CHECK(approved.window.count == 8);
  auto none = judge_deletes(0, 0, false, old, now, config());
  CHECK_FALSE(none.hold);
  CHECK(none.window.start_ms == old.start_ms);
}

TEST_CASE("applied deletions count into the window", "[sync][guard]") {
  auto now = now_ms();
  delete_window recent{now - minute_ms, 2};
  auto w = count_deletions(recent, 3, now, config());
  CHECK(w.start_ms == recent.start_ms);
  CHECK(w.count == 5);
  w = count_deletions({now - 11 * minute_ms, 9}, 3, now, config());
  CHECK(w.start_ms == now);
  CHECK(w.count == 3);
  w = count_deletions({now - 11 * minute_ms, 9}, 0, now, config());
  CHECK(w.count == 9); // nothing deleted: nothing to restart
}

TEST_CASE("a held user's reason says how many of how many, and where",
          "[sync][guard]") {
  auto now = now_ms();
  auto v = judge_deletes(11, 20, false, {now, 0}, now, config());
  auto why = hold_reason(v, "in the CRM");
  CHECK(why.find("would delete 11 of 20 synced events in the CRM")
        != std::string::npos);
  CHECK(why.find("crmsyncctl approve-deletes") != std::string::npos);
}
