// The mailbox actor's Graph budget on CAF's test coordinator (virtual
// time, no sleeps): at most `concurrency` slots held, the window's count
// (a $batch counting its inner requests),
// the calendar sync and the mail lane taking turns, slots of a requester
// that stopped coming back, waits that end at their deadline, and the
// passivation that follows idleness.
#include <algorithm>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <catch2/catch.hpp>

#include "actors/entities.hpp"
#include "common/metrics.hpp"
#include "protocol/type_ids.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
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

/// A slot as a requester received it (ticket 0: refused).
struct grant {
  bool mail;
  uint64_t ticket;
  int64_t at_ms;
};

struct fixture {
  test::temp_dir dir;
  std::unique_ptr<storage::db> db;
  test_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched
      = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  caf::actor_clock::time_point origin = sched.clock().now();
  std::shared_ptr<actors::actor_env> env;
  std::shared_ptr<std::vector<grant>> grants
      = std::make_shared<std::vector<grant>>();
  /// What the mailbox asked of its directory (passivation requests).
  std::shared_ptr<std::vector<entity_key>> passivations
      = std::make_shared<std::vector<entity_key>>();
  caf::actor directory;
  mailbox_actor mailbox;
  std::vector<caf::actor> requesters;
  tenant_id org{7};
  user_id user{42};

  fixture() {
    storage::db_options o;
    o.path = dir.path();
    auto opened = storage::db::open(o);
    REQUIRE(opened);
    db = std::move(*opened);
    env = std::make_shared<actors::actor_env>();
    env->db = db.get();
    env->now_ms = [this] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 sched.clock().now() - origin)
          .count();
    };
    auto log = passivations;
    directory = sys.spawn([log](caf::event_based_actor*) -> caf::behavior {
      return {[log](atom::passivate_atom, const entity_key& k) {
        log->push_back(k);
      }};
    });
  }

  ~fixture() {
    for (auto& r : requesters)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    if (mailbox)
      caf::anon_send_exit(mailbox, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
    sched.run();
  }

  void start(actors::mailbox_limits limits) {
    env->mailbox = limits;
    mailbox = actors::spawn_mailbox(sys, org, user, env, directory);
    sched.run();
  }

  /// An actor asking `n` slots of one lane at once, each for `weight`
  /// requests (a $batch: its inner requests), recording each.
  caf::actor ask(bool mail, int n, int64_t not_after_ms = 0,
                 uint32_t weight = 1) {
    auto log = grants;
    auto clock = env->now_ms;
    auto mb = mailbox;
    auto r = sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      for (int i = 0; i < n; ++i)
        self->request(mb, std::chrono::seconds(86400),
                      mailbox_slot_request{mail, not_after_ms, weight})
            .then(
                [=](mailbox_slot& s) {
                  log->push_back(grant{mail, s.ticket, clock()});
                },
                [=](caf::error&) {
                  log->push_back(grant{mail, 0, clock()});
                });
      return {[](int) {
      }};
    });
    requesters.push_back(r);
    sched.run();
    return r;
  }

  void release(uint64_t ticket) {
    caf::anon_send(mailbox, mailbox_slot_release{ticket});
    sched.run();
  }

  /// Releases every slot granted so far and not released yet, in order.
  size_t release_all(size_t& released) {
    size_t n = 0;
    while (released < grants->size()) {
      auto t = (*grants)[released++].ticket;
      if (t != 0) {
        release(t);
        ++n;
      }
    }
    return n;
  }

  void advance(std::chrono::milliseconds total,
               std::chrono::milliseconds step = 100ms) {
    for (auto t = 0ms; t < total; t += step) {
      sched.advance_time(step);
      sched.run();
    }
  }

  mailbox_budget figures() {
    mailbox_budget out;
    requesters.push_back(sys.spawn(
        [&out, mb = mailbox](caf::event_based_actor* self) -> caf::behavior {
          self->request(mb, 1s, mailbox_budget_request{})
              .then([&out](mailbox_budget& b) { out = b; });
          return {[](int) {
          }};
        }));
    sched.run();
    return out;
  }

  bool agrees_to_passivate() {
    bool agreed = false;
    requesters.push_back(sys.spawn(
        [&agreed, mb = mailbox](caf::event_based_actor* self) -> caf::behavior {
          self->request(mb, 1s, atom::passivate_atom_v).then([&agreed](bool a) {
            agreed = a;
          });
          return {[](int) {
          }};
        }));
    sched.run();
    return agreed;
  }

  size_t granted(bool mail) const {
    return std::count_if(grants->begin(), grants->end(), [&](const grant& g) {
      return g.mail == mail && g.ticket != 0;
    });
  }
};

actors::mailbox_limits limits(size_t concurrency, size_t per_window) {
  actors::mailbox_limits l;
  l.concurrency = concurrency;
  l.per_window = per_window;
  l.window = 60s;
  l.idle_after = 10s;
  l.forget_at_most = 100;
  return l;
}

} // namespace

TEST_CASE("a mailbox grants at most its concurrency, a release lets the next "
          "one in",
          "[mailbox][budget]") {
  fixture f;
  f.start(limits(4, 10000));
  f.ask(false, 10);
  CHECK(f.grants->size() == 4);
  auto b = f.figures();
  CHECK(b.in_flight == 4);
  CHECK(b.queued_sync == 6);
  f.release((*f.grants)[0].ticket);
  CHECK(f.grants->size() == 5);
  // A ticket given back twice frees nothing more.
  f.release((*f.grants)[0].ticket);
  CHECK(f.grants->size() == 5);
  size_t released = 0;
  while (f.grants->size() < 10)
    f.release_all(released);
  f.release_all(released);
  b = f.figures();
  CHECK(b.max_in_flight == 4);
  CHECK(b.in_flight == 0);
  CHECK(b.granted_sync == 10);
  CHECK(b.in_window == 10);
}

TEST_CASE("the calendar sync and the mail lane take turns at a busy mailbox",
          "[mailbox][budget]") {
  fixture f;
  f.start(limits(4, 10000));
  // The sync holds every slot and has 16 more waiting; then 20 e-mails.
  f.ask(false, 20);
  f.ask(true, 20);
  REQUIRE(f.grants->size() == 4);
  // Every slot given back goes to the other lane than the one before, so
  // mail is not stuck behind the sync's queue (nor the sync behind mail).
  size_t released = 0;
  while (f.grants->size() < 24)
    f.release((*f.grants)[released++].ticket);
  std::vector<bool> order;
  for (size_t i = 4; i < 24; ++i)
    order.push_back((*f.grants)[i].mail);
  for (size_t i = 0; i < order.size(); ++i)
    CHECK(order[i] == (i % 2 == 0)); // mail, sync, mail, ...
  CHECK(f.granted(true) == 10);
  CHECK(f.granted(false) == 14);
  // With only one lane waiting, it takes every slot.
  while (f.grants->size() < 40)
    f.release((*f.grants)[released++].ticket);
  CHECK(f.granted(true) == 20);
  CHECK(f.granted(false) == 20);
}

TEST_CASE("a mailbox sends at most its window's count, then waits for the "
          "window to move",
          "[mailbox][budget]") {
  fixture f;
  f.start(limits(4, 5));
  f.ask(false, 8);
  size_t released = 0;
  f.release_all(released);
  f.release_all(released);
  // Five answered within the minute: the sixth waits.
  CHECK(f.grants->size() == 5);
  CHECK(f.figures().in_window == 5);
  f.advance(59s, 1s);
  CHECK(f.grants->size() == 5);
  f.advance(2s, 1s);
  CHECK(f.grants->size() == 8);
  // Each of the three came after the window moved past the first answers.
  for (size_t i = 5; i < 8; ++i)
    CHECK((*f.grants)[i].at_ms >= 60'000);
}

TEST_CASE("the slots and queued requests of a requester that stopped come "
          "back",
          "[mailbox][budget]") {
  fixture f;
  f.start(limits(4, 10000));
  auto greedy = f.ask(false, 6);
  REQUIRE(f.grants->size() == 4);
  f.ask(true, 2);
  CHECK(f.grants->size() == 4);
  caf::anon_send_exit(greedy, caf::exit_reason::kill);
  f.sched.run();
  // Both e-mails got a slot; the dead requester's two waiting ones did not.
  CHECK(f.granted(true) == 2);
  CHECK(f.granted(false) == 4);
  auto b = f.figures();
  CHECK(b.queued_sync == 0);
  CHECK(b.in_flight == 2);
}

TEST_CASE("a request still waiting at its deadline is refused, not granted "
          "later",
          "[mailbox][budget]") {
  fixture f;
  f.start(limits(1, 10000));
  f.ask(false, 1);
  REQUIRE(f.grants->size() == 1);
  f.ask(true, 1, f.env->now_ms() + 1000);
  f.advance(1100ms);
  REQUIRE(f.grants->size() == 2);
  CHECK((*f.grants)[1].ticket == 0); // refused
  f.release((*f.grants)[0].ticket);
  CHECK(f.grants->size() == 2); // nothing granted to the one that left
  CHECK(f.figures().in_flight == 0);
}

TEST_CASE("an idle mailbox asks to be passivated and agrees only when its "
          "window is nearly empty",
          "[mailbox][budget]") {
  fixture f;
  auto l = limits(4, 10000);
  l.forget_at_most = 2;
  f.start(l);
  f.ask(false, 3);
  CHECK(f.passivations->empty());
  CHECK_FALSE(f.agrees_to_passivate()); // slots held
  size_t released = 0;
  f.release_all(released);
  f.advance(9s, 1s);
  CHECK(f.passivations->empty());
  f.advance(2s, 1s);
  REQUIRE(f.passivations->size() == 1);
  CHECK(f.passivations->front()
        == entity_key{entity_kind::mailbox, f.org, f.user});
  // Three answered within the window: it keeps them and stays.
  CHECK_FALSE(f.agrees_to_passivate());
  f.advance(60s, 1s);
  CHECK(f.agrees_to_passivate());
}

TEST_CASE("a slot whose release was lost is taken back after its lease",
          "[mailbox][budget]") {
  fixture f;
  auto l = limits(1, 10000);
  l.lease = 60s;
  f.start(l);
  f.ask(false, 1); // granted, and its release never comes
  f.ask(true, 1);
  REQUIRE(f.grants->size() == 1);
  f.advance(59s, 1s);
  CHECK(f.grants->size() == 1);
  f.advance(2s, 1s);
  REQUIRE(f.grants->size() == 2);
  CHECK((*f.grants)[1].mail);
  CHECK((*f.grants)[1].ticket != 0);
  auto b = f.figures();
  CHECK(b.reclaimed == 1);
  CHECK(b.in_flight == 1);
  // The late release of the lost slot frees nothing more.
  f.release((*f.grants)[0].ticket);
  CHECK(f.figures().in_flight == 1);
}

// t13-async: Outlook counts each request inside a $batch against the
// mailbox's window; the batch holds one slot of the concurrency.
TEST_CASE("a $batch counts each of its inner requests in the window",
          "[mailbox][budget][batch]") {
  fixture f;
  f.start(limits(4, 30));
  f.ask(false, 1, 0, 20);
  REQUIRE(f.grants->size() == 1);
  f.release((*f.grants)[0].ticket);
  CHECK(f.figures().in_window == 20);
  // 20 answered + 20 more would pass 30: the second batch waits for the
  // window to move, though no slot is held.
  f.ask(false, 1, 0, 20);
  CHECK(f.grants->size() == 1);
  auto b = f.figures();
  CHECK(b.in_flight == 0);
  CHECK(b.queued_sync == 1);
  // The mail lane's turn comes first, and its one request fits.
  f.ask(true, 1);
  CHECK(f.granted(true) == 1);
  f.advance(59s, 1s);
  CHECK(f.granted(false) == 1);
  f.advance(2s, 1s);
  REQUIRE(f.granted(false) == 2);
  CHECK(f.grants->back().at_ms >= 60'000);
}

TEST_CASE("held batches count in the window before they are answered",
          "[mailbox][budget][batch]") {
  fixture f;
  f.start(limits(4, 30));
  // Two batches of 20 at once: the concurrency would allow both, the
  // window allows one.
  f.ask(false, 2, 0, 20);
  CHECK(f.grants->size() == 1);
  auto b = f.figures();
  CHECK(b.in_flight == 1);
  CHECK(b.queued_sync == 1);
  CHECK(b.in_window == 0); // counted once answered
  f.release((*f.grants)[0].ticket);
  CHECK(f.grants->size() == 1);
  CHECK(f.figures().in_window == 20);
  f.advance(61s, 1s);
  REQUIRE(f.grants->size() == 2);
  CHECK(f.grants->back().ticket != 0);
}

TEST_CASE("a batch larger than the whole window waits for an empty window "
          "instead of for ever",
          "[mailbox][budget][batch]") {
  fixture f;
  f.start(limits(4, 10));
  f.ask(false, 1);
  f.release((*f.grants)[0].ticket);
  f.ask(false, 1, 0, 20);
  CHECK(f.grants->size() == 1);
  f.advance(61s, 1s);
  REQUIRE(f.grants->size() == 2);
  f.release((*f.grants)[1].ticket);
  CHECK(f.figures().in_window == 10);
}

namespace {

/// The count of crmsync_corrupt_records_total{kind="mailbox"} now.
double corrupt_mailboxes() {
  auto text = metrics::node().render();
  std::string series = "crmsync_corrupt_records_total{kind=\"mailbox\"} ";
  auto at = text.find(series);
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + series.size()));
}

} // namespace

// t13-async: a damaged mailbox record used to stop the actor at each
// activation, so every slot request of the user's sync failed
// (mailbox_budget) for good.
TEST_CASE("a corrupt mailbox record is reported and replaced, and the "
          "mailbox grants slots",
          "[mailbox][budget][corrupt]") {
  fixture f;
  auto key = storage::keys::sync_state(f.org, f.user, entity_kind::mailbox);
  storage::write_batch b;
  b.put(storage::column::sync, key, std::string("\xff\x01garbage", 9));
  REQUIRE_FALSE(f.db->write(b));
  auto before = corrupt_mailboxes();
  f.start(limits(4, 10000));
  f.ask(false, 2);
  REQUIRE(f.grants->size() == 2);
  CHECK((*f.grants)[0].ticket != 0);
  CHECK((*f.grants)[1].ticket != 0);
  CHECK(f.figures().in_window == 0); // an empty window
  CHECK(corrupt_mailboxes() == before + 1);
  // Rewritten: the next activation reads it.
  std::string v;
  bool found = false;
  REQUIRE_FALSE(f.db->get(storage::column::sync, key, v, found));
  REQUIRE(found);
  mailbox_status st;
  REQUIRE(storage::codec::decode(v, st));
  CHECK(st.org == f.org);
  CHECK(st.user == f.user);
  CHECK_FALSE(st.office365_linked);
  // Audited in the organization's log.
  size_t audited = 0;
  auto prefix = storage::keys::audit(f.org, 0, 0).substr(0, 8);
  f.db->scan(storage::column::audit, prefix, storage::keys::prefix_end(prefix),
             [&](std::string_view, std::string_view value) {
               audit_entry a;
               if (storage::codec::decode(value, a)
                   && a.action == "mailbox.record_corrupt")
                 ++audited;
               return true;
             });
  CHECK(audited == 1);
}

TEST_CASE("a readable mailbox record is kept as it is",
          "[mailbox][budget][corrupt]") {
  fixture f;
  auto key = storage::keys::sync_state(f.org, f.user, entity_kind::mailbox);
  mailbox_status linked;
  linked.org = f.org;
  linked.user = f.user;
  linked.office365_linked = true;
  linked.office365_user_id = "oid-1";
  storage::write_batch b;
  b.put(storage::column::sync, key, storage::codec::encode(linked));
  REQUIRE_FALSE(f.db->write(b));
  auto before = corrupt_mailboxes();
  f.start(limits(4, 10000));
  f.ask(false, 1);
  CHECK(f.grants->size() == 1);
  CHECK(corrupt_mailboxes() == before);
  std::string v;
  bool found = false;
  REQUIRE_FALSE(f.db->get(storage::column::sync, key, v, found));
  CHECK(v == storage::codec::encode(linked));
}
