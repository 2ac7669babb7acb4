// The initial sync's selection, order and $batch rounds (sync/initial.hpp).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sync/initial.hpp"
#include "tests/sync/decide_support.hpp"

using namespace crmsync;
using namespace crmsync::sync;
using namespace crmsync::test;

namespace {

std::vector<std::string> titles(const std::vector<event_record>& events) {
  std::vector<std::string> out;
  for (auto& e : events)
    out.push_back(e.title);
  return out;
}

const calendar_paths paths{"oid-1", "cal-1"};

} // namespace

TEST_CASE("the initial sync sends future events by start, then past ones by "
          "most recent end (R18)",
          "[sync][initial]") {
  auto now = now_ms();
  std::vector<event_record> all{
      event(1, "past-5d", now - 5 * day_ms, now - 5 * day_ms + hour_ms),
      event(2, "future-3d", now + 3 * day_ms, now + 3 * day_ms + hour_ms),
      event(3, "past-1d", now - day_ms, now - day_ms + hour_ms),
      event(4, "future-1d", now + day_ms, now + day_ms + hour_ms),
      // In progress: it ends after now, so it counts as future.
      event(5, "running", now - hour_ms, now + hour_ms),
      event(6, "past-3d", now - 3 * day_ms, now - 3 * day_ms + hour_ms),
      event(7, "future-2d", now + 2 * day_ms, now + 2 * day_ms + hour_ms),
  };
  auto chosen = initial_selection(all, owner, now, 100);
  CHECK(titles(chosen)
        == std::vector<std::string>{"running", "future-1d", "future-2d",
                                    "future-3d", "past-1d", "past-3d",
                                    "past-5d"});
}

TEST_CASE("the initial sync sends only the user's own eligible events (R16, "
          "R19)",
          "[sync][initial]") {
  auto now = now_ms();
  auto mine = event(1, "mine", now + day_ms, now + day_ms + hour_ms);
  auto other = event(2, "other", now + day_ms, now + day_ms + hour_ms);
  other.owner = user_id{0x99};
  auto imported = event(3, "imported", now + day_ms, now + day_ms + hour_ms);
  imported.origin = event_origin::imported;
  auto mass = event(4, "mass", now + 2 * day_ms, now + 2 * day_ms + hour_ms);
  mass.origin = event_origin::mass_update;
  auto outlook = event(5, "outlook", now + 3 * day_ms, now + 3 * day_ms + 1);
  outlook.origin = event_origin::office365;
  auto chosen = initial_selection({mine, other, imported, mass, outlook}, owner,
                                  now, 10);
  CHECK(titles(chosen) == std::vector<std::string>{"mine", "mass", "outlook"});
}

TEST_CASE("the initial sync sends at most the cap, future events first (R17)",
          "[sync][initial]") {
  auto now = now_ms();
  std::vector<event_record> all{
      event(1, "past-1d", now - day_ms, now - day_ms + hour_ms),
      event(2, "past-2d", now - 2 * day_ms, now - 2 * day_ms + hour_ms),
      event(3, "future-2d", now + 2 * day_ms, now + 2 * day_ms + hour_ms),
      event(4, "future-1d", now + day_ms, now + day_ms + hour_ms),
  };
  CHECK(titles(initial_selection(all, owner, now, 3))
        == std::vector<std::string>{"future-1d", "future-2d", "past-1d"});
  CHECK(titles(initial_selection(all, owner, now, 1))
        == std::vector<std::string>{"future-1d"});
  CHECK(initial_selection(all, owner, now, 0).empty());
}

TEST_CASE("events starting together keep the CRM's id order, so a resumed "
          "initial sync sees the same order",
          "[sync][initial]") {
  auto now = now_ms();
  auto start = now + day_ms;
  std::vector<event_record> all{event(9, "b", start, start + hour_ms),
                                event(3, "a", start, start + hour_ms),
                                event(7, "c", now - day_ms, now - hour_ms),
                                event(2, "d", now - day_ms, now - hour_ms)};
  CHECK(titles(initial_selection(all, owner, now, 10))
        == std::vector<std::string>{"a", "b", "d", "c"});
}

TEST_CASE("the initial creates go in $batch rounds of at most 20, in order, "
          "each with its transactionId and tag",
          "[sync][initial]") {
  auto now = now_ms();
  std::vector<event_record> todo;
  for (uint64_t i = 1; i <= 45; ++i)
    todo.push_back(event(i, "e" + std::to_string(i), now + i * hour_ms,
                         now + i * hour_ms + hour_ms));
  auto rounds = initial_rounds(todo, paths);
  REQUIRE(rounds.size() == 3);
  CHECK(rounds[0].size() == 20);
  CHECK(rounds[1].size() == 20);
  CHECK(rounds[2].size() == 5);
  for (size_t n = 0; n < rounds.size(); ++n)
    for (size_t k = 0; k < rounds[n].size(); ++k) {
      auto& r = rounds[n][k];
      auto& e = todo[n * batch_limit + k];
      CHECK(r.method == "POST");
      CHECK(r.url == "/users/oid-1/calendars/cal-1/events");
      CHECK(r.body == to_graph(e, true));
      CHECK(r.body.find("\"transactionId\":\"crmsync-" + e.org.str()
                        + e.id.str() + "\"")
            != std::string::npos);
      CHECK(r.headers.empty());
    }
  CHECK(initial_rounds({}, paths).empty());
  CHECK(initial_rounds({todo.begin(), todo.begin() + 20}, paths).size() == 1);
}

namespace {

graph::batch_response answer(int status, std::string body) {
  graph::batch_response a;
  a.status = status;
  a.body = std::move(body);
  return a;
}

std::string graph_error(const char* code) {
  return std::string{R"({"error":{"code":")"} + code
         + R"(","message":"refused"}})";
}

} // namespace

TEST_CASE("an initial $batch answer links what was created, skips what is "
          "refused for good and stops on what must be retried",
          "[sync][initial]") {
  auto now = now_ms();
  std::vector<event_record> sent;
  for (uint64_t i = 1; i <= 5; ++i)
    sent.push_back(event(i, "e" + std::to_string(i), now + i * hour_ms,
                         now + i * hour_ms + hour_ms));
  sent[0].version = 3;
  std::vector<graph::batch_response> answers{
      answer(201, R"({"id":"g-1","changeKey":"ck-1"})"),
      answer(400, graph_error("ErrorInvalidRequest")),
      answer(403, graph_error("ErrorAccessDenied")),
      answer(201, R"({"id":"g-4","changeKey":"ck-4"})"),
      answer(503, graph_error("ServiceUnavailable")),
  };
  auto out = judge_initial_batch(sent, answers);
  REQUIRE(out.linked.size() == 2);
  CHECK(out.linked[0].event == event_id{1});
  CHECK(out.linked[0].graph_id == "g-1");
  CHECK(out.linked[0].change_key == "ck-1");
  CHECK(out.linked[0].crm_version == 3);
  CHECK(out.linked[1].event == event_id{4});
  // One event Office 365 never accepts: skipped, the others go on.
  REQUIRE(out.refused.size() == 1);
  CHECK(out.refused[0].first.id == event_id{2});
  CHECK(out.refused[0].second.code == "ErrorInvalidRequest");
  // A blocked mailbox is no refusal of the event: it stops the round, the
  // first such error is the one reported, and nothing of it counts done.
  REQUIRE(out.failure);
  CHECK(out.failure->status == 403);
  CHECK(out.failure->code == "ErrorAccessDenied");
  CHECK_FALSE(out.calendar_gone);
}

TEST_CASE("an initial $batch item answered 404 means the product calendar "
          "is gone",
          "[sync][initial]") {
  auto now = now_ms();
  std::vector<event_record> sent{event(1, "a", now + hour_ms, now + day_ms)};
  auto out = judge_initial_batch(
      sent, {answer(404, graph_error("ErrorItemNotFound"))});
  CHECK(out.calendar_gone);
  CHECK(out.linked.empty());
  CHECK(out.refused.empty());
  CHECK_FALSE(out.failure);
  // A 404 that says the mailbox is not enabled is a block, not R21.
  auto blocked = judge_initial_batch(
      sent, {answer(404, graph_error("MailboxNotEnabledForRESTAPI"))});
  CHECK_FALSE(blocked.calendar_gone);
  REQUIRE(blocked.failure);
  CHECK(blocked.failure->code == "MailboxNotEnabledForRESTAPI");
}

// t15-flake: the initial sync's creates, sent again after a lost answer
// while the event changed, are answered with the event the first made.
TEST_CASE("an initial $batch create answered with an older copy of the "
          "event links an older version",
          "[sync][initial]") {
  auto now = now_ms();
  auto first = event(1, "First", now + hour_ms, now + 2 * hour_ms);
  auto renamed = first;
  renamed.title = "Renamed";
  renamed.version = 2;
  auto other = event(2, "Other", now + hour_ms, now + 2 * hour_ms);
  auto out = judge_initial_batch(
      {renamed, other}, {answer(201, created_answer(first, "g-1", "ck-1")),
                         answer(201, created_answer(other, "g-2", "ck-2"))});
  REQUIRE(out.linked.size() == 2);
  CHECK(out.linked[0].graph_id == "g-1");
  CHECK(out.linked[0].change_key == "ck-1");
  // Older than the CRM's: the outbox row of the rename sends it.
  CHECK(out.linked[0].crm_version == 1);
  CHECK(out.linked[1].crm_version == 1);
}
