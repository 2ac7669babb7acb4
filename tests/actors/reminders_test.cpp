// The reminders actor on CAF's test coordinator (virtual time, no sleeps)
// over a real RocksDB in a temp dir: set, replace and cancel; earliest
// first; periodic re-arming at the same phase; persistence across a
// restart; the delivery cap, also for a backlog found overdue at start;
// and the spreading of periodic due times over their interval.
#include "actors/reminders.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>

#include "protocol/type_ids.hpp"
#include "storage/reminder_rows.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync;
using namespace std::chrono_literals;

namespace {

struct test_config : caf::actor_system_config {
  test_config() {
    register_types(*this);
    set("scheduler.policy", caf::atom("testing"));
    set("logger.inline-output", true);
  }
};

/// A delivery as the handler saw it, with the virtual time it arrived.
struct delivery {
  reminder_due due;
  int64_t at_ms;
};

entity_key calendar_of(uint64_t n) {
  return entity_key{entity_kind::calendar, tenant_id{1000 + n % 7},
                    user_id{n + 1}};
}

struct fixture {
  test::temp_dir dir;
  std::unique_ptr<storage::db> db;
  test_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched
      = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  /// Wall-clock "now" of the test: a fixed instant plus virtual time.
  int64_t start_ms = 1'800'000'000'000;
  caf::actor_clock::time_point origin = sched.clock().now();
  std::shared_ptr<actors::actor_env> env;
  std::shared_ptr<std::vector<delivery>> seen
      = std::make_shared<std::vector<delivery>>();
  caf::actor probe;
  reminders_actor reminders;
  actors::reminders_config rcfg;

  fixture() {
    open_db();
    env = std::make_shared<actors::actor_env>();
    env->db = db.get();
    env->now_ms = [this] {
      return now();
    };
    auto log = seen;
    auto clock = env->now_ms;
    probe = sys.spawn([log, clock](caf::event_based_actor*) -> caf::behavior {
      return {[log, clock](reminder_due& d) {
        log->push_back(delivery{d, clock()});
      }};
    });
    rcfg.max_per_second = 1000;
  }

  ~fixture() {
    stop();
    caf::anon_send_exit(probe, caf::exit_reason::user_shutdown);
    sched.run();
  }

  int64_t now() const {
    return start_ms
           + std::chrono::duration_cast<std::chrono::milliseconds>(
                 sched.clock().now() - origin)
                 .count();
  }

  void open_db() {
    storage::db_options o;
    o.path = dir.path();
    auto opened = storage::db::open(o);
    REQUIRE(opened);
    db = std::move(*opened);
    if (env)
      env->db = db.get();
  }

  void start() {
    reminders = actors::spawn_reminders(sys, env, probe, rcfg);
    sched.run();
  }

  void stop() {
    if (!reminders)
      return;
    caf::anon_send_exit(reminders, caf::exit_reason::user_shutdown);
    sched.run();
    reminders = nullptr;
  }

  /// Moves virtual time forward in steps, running every actor after each.
  void advance(std::chrono::milliseconds total,
               std::chrono::milliseconds step = 100ms) {
    for (auto t = 0ms; t < total; t += step) {
      sched.advance_time(step);
      sched.run();
    }
  }

  template <class Reply, class Msg>
  Reply ask(Msg msg) {
    caf::scoped_actor self{sys};
    self->send(reminders, std::move(msg));
    sched.run();
    Reply out{};
    bool got = false;
    self->receive(
        [&](Reply& x) {
          out = std::move(x);
          got = true;
        },
        [&](caf::error& err) { FAIL(sys.render(err)); });
    REQUIRE(got);
    return out;
  }

  reminder set(entity_key target, int64_t due_ms, int64_t period_ms = 0,
               reminder_kind kind = reminder_kind::reconcile) {
    return ask<reminder>(reminder{target, kind, due_ms, period_ms});
  }

  bool cancel(entity_key target,
              reminder_kind kind = reminder_kind::reconcile) {
    return ask<bool>(cancel_reminder{target, kind});
  }

  /// The stored due rows, in key order.
  std::vector<reminder> stored() {
    std::vector<reminder> out;
    auto err = db->scan(storage::column::reminders,
                        storage::reminder_rows::due_begin(INT64_MIN),
                        storage::reminder_rows::due_end(),
                        [&](std::string_view k, std::string_view v) {
                          auto r = storage::reminder_rows::decode_due(k, v);
                          REQUIRE(r);
                          out.push_back(*r);
                          return true;
                        });
    REQUIRE_FALSE(err);
    return out;
  }

  /// The largest number of deliveries in any window of `window_ms` (every
  /// window starting at a delivery).
  size_t busiest(int64_t window_ms = 1000) const {
    std::vector<int64_t> at;
    for (auto& d : *seen)
      at.push_back(d.at_ms);
    std::sort(at.begin(), at.end());
    size_t most = 0;
    for (size_t i = 0, j = 0; i < at.size(); ++i) {
      while (j < at.size() && at[j] < at[i] + window_ms)
        ++j;
      most = std::max(most, j - i);
    }
    return most;
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "a reminder is set, replaced and cancelled",
                 "[actors][reminders]") {
  start();
  auto a = calendar_of(1);
  auto b = calendar_of(2);
  set(a, now() + 10'000);
  // Setting the same target and kind again replaces it.
  set(a, now() + 20'000);
  // Another kind of the same target is a reminder of its own.
  set(a, now() + 30'000, 0, reminder_kind::renew_subscription);
  set(b, now() + 5'000);
  CHECK(stored().size() == 3);
  auto stats = ask<reminder_stats>(atom::stats_atom_v);
  CHECK(stats.next_wake_ms == start_ms + 5'000);
  CHECK(stats.delivered == 0);
  CHECK(cancel(b));
  CHECK_FALSE(cancel(b));
  CHECK(stored().size() == 2);
  advance(15s);
  CHECK(seen->empty()); // the replaced due time and the cancelled one
  advance(6s);
  REQUIRE(seen->size() == 1);
  CHECK(seen->at(0).due.target == a);
  CHECK(seen->at(0).due.kind == reminder_kind::reconcile);
  CHECK(seen->at(0).due.due_ms == start_ms + 20'000);
  CHECK(seen->at(0).at_ms == start_ms + 20'000);
  advance(10s);
  REQUIRE(seen->size() == 2);
  CHECK(seen->at(1).due.kind == reminder_kind::renew_subscription);
  // One-shot reminders are gone once delivered; nothing is armed.
  CHECK(stored().empty());
  stats = ask<reminder_stats>(atom::stats_atom_v);
  CHECK(stats.delivered == 2);
  CHECK(stats.next_wake_ms == 0);
}

TEST_CASE_METHOD(fixture, "a reminder that could not be read back is refused",
                 "[actors][reminders]") {
  start();
  caf::scoped_actor self{sys};
  std::vector<reminder> bad
      = {reminder{calendar_of(1), reminder_kind::reconcile, now(), -1},
         reminder{
             entity_key{static_cast<entity_kind>(9), tenant_id{1}, user_id{2}},
             reminder_kind::reconcile, now() + 1'000, 0}};
  for (auto& r : bad) {
    self->send(reminders, r);
    sched.run();
    bool refused = false;
    self->receive([&](reminder&) { FAIL("stored"); },
                  [&](caf::error& err) {
                    refused = to_api_error(err).code == "bad_reminder";
                  });
    CHECK(refused);
  }
  CHECK(stored().empty());
}

TEST_CASE_METHOD(fixture, "reminders are delivered earliest first",
                 "[actors][reminders]") {
  start();
  // Due times in a scrambled order, unevenly spaced.
  std::vector<int64_t> offsets;
  for (int i = 0; i < 40; ++i)
    offsets.push_back(1'000 + (i * 7919) % 40 * 1'301 + i % 3 * 257);
  for (size_t i = 0; i < offsets.size(); ++i)
    set(calendar_of(i), now() + offsets[i]);
  // All become due at once: the order is the store's.
  sched.advance_time(120s);
  sched.run();
  REQUIRE(seen->size() == offsets.size());
  for (size_t i = 1; i < seen->size(); ++i)
    CHECK(seen->at(i - 1).due.due_ms <= seen->at(i).due.due_ms);
  // Delivered one by one as they fall due, too.
  seen->clear();
  for (size_t i = 0; i < offsets.size(); ++i)
    set(calendar_of(i), now() + offsets[i]);
  advance(60s); // in steps of 100 ms
  REQUIRE(seen->size() == offsets.size());
  for (auto& d : *seen) {
    CHECK(d.at_ms >= d.due.due_ms);
    CHECK(d.at_ms < d.due.due_ms + 100);
  }
}

TEST_CASE_METHOD(fixture, "a periodic reminder re-arms at its phase",
                 "[actors][reminders]") {
  start();
  auto a = calendar_of(3);
  set(a, now() + 5'000, 10'000);
  advance(36s);
  REQUIRE(seen->size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CHECK(seen->at(i).due.due_ms == start_ms + 5'000 + 10'000 * int64_t(i));
    CHECK(seen->at(i).at_ms == seen->at(i).due.due_ms);
  }
  auto rows = stored();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].due_ms == start_ms + 45'000);
  CHECK(rows[0].period_ms == 10'000);
  CHECK(cancel(a));
  advance(20s);
  CHECK(seen->size() == 4);
}

TEST_CASE_METHOD(fixture, "reminders survive a restart of actor and database",
                 "[actors][reminders]") {
  start();
  set(calendar_of(1), now() + 2'000);
  set(calendar_of(2), now() + 30'000);
  set(calendar_of(3), now() + 40'000, 60'000);
  advance(3s);
  REQUIRE(seen->size() == 1);
  stop();
  db.reset();
  open_db();
  advance(5s); // nothing runs while the actor is down
  start();
  advance(40s);
  REQUIRE(seen->size() == 3);
  CHECK(seen->at(0).due.target == calendar_of(1)); // not delivered again
  CHECK(seen->at(1).due.target == calendar_of(2));
  CHECK(seen->at(1).at_ms == start_ms + 30'000);
  CHECK(seen->at(2).due.target == calendar_of(3));
  auto rows = stored();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].due_ms == start_ms + 100'000);
}

TEST_CASE_METHOD(fixture,
                 "a node's reminders wait for run_atom: none is delivered "
                 "before every actor they wake is wired",
                 "[actors][reminders]") {
  // Overdue from before a restart, and one set while not started.
  start();
  set(calendar_of(1), now() + 1'000);
  stop();
  advance(3s);
  rcfg.deliver_at_once = false;
  start();
  set(calendar_of(2), now() + 500);
  set(calendar_of(3), now() + 60'000);
  advance(5s);
  CHECK(seen->empty()); // stored, not delivered
  CHECK(stored().size() == 3);
  caf::anon_send(reminders, atom::run_atom_v);
  sched.run();
  REQUIRE(seen->size() == 2);
  CHECK(seen->at(0).due.target == calendar_of(1));
  CHECK(seen->at(1).due.target == calendar_of(2));
  // A second start changes nothing; the later one comes on time.
  caf::anon_send(reminders, atom::run_atom_v);
  advance(55s);
  REQUIRE(seen->size() == 3);
  CHECK(seen->at(2).due.target == calendar_of(3));
}

TEST_CASE_METHOD(fixture, "deliveries never exceed the cap per second",
                 "[actors][reminders]") {
  rcfg.max_per_second = 10;
  start();
  for (int i = 0; i < 50; ++i)
    set(calendar_of(i), now() + 1'000);
  advance(1s);
  CHECK(seen->size() == 10);
  advance(5s);
  CHECK(seen->size() == 50);
  CHECK(busiest() <= 10);
}

TEST_CASE_METHOD(fixture,
                 "a restart with 10,000 overdue reminders drains them at the "
                 "cap",
                 "[actors][reminders]") {
  // Written before the node went down, all due during the downtime.
  const int n = 10'000;
  storage::write_batch b;
  for (int i = 0; i < n; ++i) {
    reminder r{calendar_of(i), reminder_kind::reconcile,
               now() - 3'600'000 + i * 100, i % 2 == 0 ? 300'000 : 0};
    storage::reminder_rows::put(b, r, std::nullopt);
  }
  REQUIRE_FALSE(db->write(b));
  rcfg.max_per_second = 500;
  start();
  // Not in one tick: the first tick delivers one second's worth.
  CHECK(seen->size() == 500);
  advance(10s, 1s);
  CHECK(seen->size() == 5'500);
  advance(10s, 1s);
  // Every overdue one once (periodic ones whose next phase came up within
  // these 20 s were due again, too).
  std::set<uint64_t> overdue;
  for (auto& d : *seen)
    if (d.due.due_ms < start_ms)
      overdue.insert(d.due.target.user.value);
  CHECK(overdue.size() == size_t{n});
  CHECK(busiest() <= 500);
  // Earliest first, and the periodic ones resume at their phase after now.
  for (size_t i = 1; i < seen->size(); ++i)
    CHECK(seen->at(i - 1).due.due_ms <= seen->at(i).due.due_ms);
  auto rows = stored();
  CHECK(rows.size() == size_t{n / 2});
  for (auto& r : rows) {
    auto first_due
        = start_ms - 3'600'000 + int64_t(r.target.user.value - 1) * 100;
    CHECK(r.due_ms > start_ms);
    CHECK(r.due_ms <= start_ms + 20'000 + 300'000);
    CHECK((r.due_ms - first_due) % 300'000 == 0);
  }
}

TEST_CASE("periodic due times spread over their interval",
          "[actors][reminders]") {
  const int64_t now = 1'800'000'123'456;
  const auto interval = std::chrono::milliseconds(300'000);
  const int n = 30'000; // 100 per second on average
  std::map<int64_t, int> per_second;
  for (int i = 0; i < n; ++i) {
    auto key = calendar_of(i);
    auto due = actors::spread_due(key, interval, now);
    REQUIRE(due >= now);
    REQUIRE(due < now + interval.count());
    // Stable: the same phase whenever it is asked.
    REQUIRE(actors::spread_due(key, interval, now + 77'777) % 300'000
            == due % 300'000);
    ++per_second[(due - now) / 1000];
  }
  CHECK(per_second.size() == 300); // every second has some
  int most = 0;
  for (auto& [second, count] : per_second)
    most = std::max(most, count);
  CHECK(most <= 2 * n / 300);
}

TEST_CASE_METHOD(fixture,
                 "periodic reminders at spread phases wake a steady trickle",
                 "[actors][reminders]") {
  start();
  // 600 calendars reconciled every minute: 10 a second on average, never
  // all at once (the cap of 1,000 a second plays no part here).
  const auto interval = std::chrono::milliseconds(60'000);
  const size_t n = 600;
  for (size_t i = 0; i < n; ++i)
    set(calendar_of(i), actors::spread_due(calendar_of(i), interval, now()),
        interval.count());
  advance(120s, 1s);
  CHECK(seen->size() == 2 * n);
  CHECK(busiest() <= 2 * n / 60);
  std::map<uint64_t, int> per_target;
  for (auto& d : *seen)
    ++per_target[d.due.target.user.value];
  CHECK(per_target.size() == n);
}

// t13-cpu: a calendar sets its reconciliation reminder each time it is
// activated; the same reminder again writes nothing, but a new period (or
// due time) at the same target still replaces the stored one.
TEST_CASE_METHOD(fixture,
                 "the same reminder set again stays as it is, a new period "
                 "replaces it",
                 "[actors][reminders]") {
  start();
  auto a = calendar_of(3);
  set(a, now() + 10'000, 60'000);
  set(a, now() + 10'000, 60'000);
  REQUIRE(stored().size() == 1);
  CHECK(stored()[0].period_ms == 60'000);
  // Same due time, another period: replaced.
  set(a, now() + 10'000, 30'000);
  REQUIRE(stored().size() == 1);
  CHECK(stored()[0].period_ms == 30'000);
  CHECK(stored()[0].due_ms == start_ms + 10'000);
  advance(11s);
  REQUIRE(seen->size() == 1);
  // Re-armed at its phase with the new period, and set again unchanged.
  REQUIRE(stored().size() == 1);
  CHECK(stored()[0].due_ms == start_ms + 40'000);
  set(a, start_ms + 40'000, 30'000);
  REQUIRE(stored().size() == 1);
  advance(30s);
  REQUIRE(seen->size() == 2);
  CHECK(seen->at(1).due.due_ms == start_ms + 40'000);
}
