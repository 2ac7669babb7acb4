// Virtual actors on CAF's deterministic test coordinator: activation on
// demand, passivation after the idle timeout (advanced virtual time, no
// sleeps), reactivation with the same state from RocksDB, and messages that
// arrive during a passivation reaching the next activation.
#include "actors/directory.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>

#include "common/crypto.hpp"
#include "protocol/type_ids.hpp"
#include "storage/keys.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync;
using namespace crmsync::atom;
using namespace std::chrono_literals;

namespace {

struct test_config : caf::actor_system_config {
  test_config() {
    register_types(*this);
    set("scheduler.policy", caf::atom("testing"));
    set("logger.inline-output", true);
  }
};

struct fixture {
  test::temp_dir dir;
  std::unique_ptr<storage::db> db;
  test_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched
      = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  caf::actor directory;
  uint64_t next_id = 1000;
  /// Calendars that never answer a passivation request (when set).
  bool deaf_calendars = false;

  fixture() {
    crypto::init();
    storage::db_options o;
    o.path = dir.path();
    auto opened = storage::db::open(o);
    REQUIRE(opened);
    db = std::move(*opened);
    auto env = std::make_shared<actors::actor_env>();
    env->db = db.get();
    env->now_ms = [] {
      return int64_t{1'800'000'000'000};
    };
    env->random_id = [this] {
      return ++next_id;
    };
    env->spawn_calendar = [this](caf::actor_system& s, const entity_key&,
                                 std::chrono::milliseconds) {
      if (!deaf_calendars)
        return caf::actor{};
      return s.spawn([](caf::event_based_actor* self) -> caf::behavior {
        return {
            [=](status_request&) -> calendar_status { return {}; },
            [=](passivate_atom) -> caf::result<bool> {
              // Holds the answer for ever: the directory must stop it.
              return self->make_response_promise<bool>();
            },
        };
      });
    };
    actors::directory_config dc;
    dc.idle_timeout = 10s;
    dc.sweep_interval = 1s;
    dc.stop_timeout = 3s;
    directory = actors::spawn_directory(sys, env, dc);
    sched.run();
  }

  ~fixture() {
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// Sends a command to an entity through the directory and runs the
  /// system until it is answered.
  template <class Reply, class Msg>
  Reply ask(entity_key key, Msg msg) {
    caf::scoped_actor self{sys};
    self->send(directory, route_atom_v, key, caf::make_message(std::move(msg)));
    sched.run();
    Reply out;
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

  directory_stats stats() {
    caf::scoped_actor self{sys};
    self->send(directory, stats_atom_v);
    sched.run();
    directory_stats out;
    self->receive([&](directory_stats& s) { out = std::move(s); });
    return out;
  }

  kind_stats tenant_stats() {
    return stats().kinds[static_cast<size_t>(entity_kind::tenant)];
  }

  /// Moves virtual time forward one sweep interval at a time.
  void advance(std::chrono::seconds total) {
    for (auto t = 0s; t < total; t += 1s) {
      sched.advance_time(1s);
      sched.run();
    }
  }

  tenant_id make_org(const std::string& email) {
    return created_org(email).org.id;
  }

  org_created created_org(const std::string& email) {
    create_org cmd;
    cmd.who.service_admin = true;
    cmd.name = "Org of " + email;
    cmd.plan = edition::paid;
    cmd.admin.id = user_id{++next_id};
    cmd.admin.email = email;
    cmd.admin.name = "Admin";
    cmd.admin.token_hash = "hash";
    tenant_id id{++next_id};
    auto created
        = ask<org_created>(entity_key{entity_kind::tenant, id, {}}, cmd);
    REQUIRE(created.org.id == id);
    return created;
  }
};

entity_key tenant_key(tenant_id t) {
  return entity_key{entity_kind::tenant, t, user_id{}};
}

caller admin() {
  caller c;
  c.service_admin = true;
  return c;
}

} // namespace

TEST_CASE_METHOD(fixture, "the first message activates an entity",
                 "[actors][directory]") {
  CHECK(tenant_stats().activations == 0);
  auto org = make_org("first@example.com");
  auto ks = tenant_stats();
  CHECK(ks.activations == 1);
  CHECK(ks.live == 1);
  CHECK(ks.passivations == 0);
  auto s = stats();
  REQUIRE(s.live.size() == 1);
  CHECK(s.live[0].key.tenant == org);
  // Further messages reuse the live activation.
  auto o = ask<org_record>(tenant_key(org), get_org{admin()});
  CHECK(o.name == "Org of first@example.com");
  CHECK(tenant_stats().activations == 1);
}

TEST_CASE_METHOD(fixture,
                 "idle entities passivate and come back with their state",
                 "[actors][directory]") {
  auto org = make_org("idle@example.com");
  create_event ev;
  ev.who = admin();
  auto owner = ask<org_record>(tenant_key(org), get_org{admin()}).super_admin;
  ev.draft.owner = owner;
  ev.draft.title = "Survives passivation";
  ev.draft.start_ms = 1'800'000'000'000;
  ev.draft.end_ms = 1'800'003'600'000;
  auto created = ask<event_record>(tenant_key(org), ev);
  // Not idle long enough yet.
  advance(5s);
  CHECK(tenant_stats().live == 1);
  advance(6s);
  auto ks = tenant_stats();
  CHECK(ks.live == 0);
  CHECK(ks.passivations == 1);
  CHECK(stats().live.empty());
  // The next message reactivates it, with the same state from RocksDB.
  auto again
      = ask<event_record>(tenant_key(org), get_event{admin(), created.id});
  CHECK(again.title == "Survives passivation");
  CHECK(again.version == 1);
  auto o = ask<org_record>(tenant_key(org), get_org{admin()});
  CHECK(o.event_count == 1);
  ks = tenant_stats();
  CHECK(ks.activations == 2);
  CHECK(ks.live == 1);
}

TEST_CASE_METHOD(fixture, "activity keeps an entity alive",
                 "[actors][directory]") {
  auto org = make_org("busy@example.com");
  for (int i = 0; i < 5; ++i) {
    advance(6s);
    ask<org_record>(tenant_key(org), get_org{admin()});
  }
  auto ks = tenant_stats();
  CHECK(ks.live == 1);
  CHECK(ks.passivations == 0);
  CHECK(ks.activations == 1);
}

TEST_CASE_METHOD(fixture,
                 "messages during a passivation reach the next activation",
                 "[actors][directory]") {
  auto org = make_org("race@example.com");
  caf::scoped_actor self{sys};
  // Passivation starts, and before anything runs a request arrives.
  self->send(directory, passivate_atom_v, tenant_key(org));
  self->send(directory, route_atom_v, tenant_key(org),
             caf::make_message(get_org{admin()}));
  sched.run();
  bool passivating = false;
  std::string name;
  int replies = 0;
  while (replies < 2) {
    self->receive(
        [&](bool started) {
          passivating = started;
          ++replies;
        },
        [&](org_record& o) {
          name = o.name;
          ++replies;
        },
        [&](caf::error& err) { FAIL(sys.render(err)); });
  }
  CHECK(passivating);
  CHECK(name == "Org of race@example.com");
  auto ks = tenant_stats();
  CHECK(ks.passivations == 1);
  CHECK(ks.activations == 2);
  CHECK(ks.live == 1);
}

TEST_CASE_METHOD(fixture, "mailbox and calendar actors activate per user",
                 "[actors][directory]") {
  auto org = make_org("kinds@example.com");
  auto owner = ask<org_record>(tenant_key(org), get_org{admin()}).super_admin;
  auto cal = ask<calendar_status>(entity_key{entity_kind::calendar, org, owner},
                                  status_request{});
  CHECK(cal.state == calendar_state::disabled);
  CHECK(cal.user == owner);
  auto mb = ask<mailbox_status>(entity_key{entity_kind::mailbox, org, owner},
                                status_request{});
  CHECK_FALSE(mb.office365_linked);
  auto s = stats();
  CHECK(s.kinds[static_cast<size_t>(entity_kind::calendar)].live == 1);
  CHECK(s.kinds[static_cast<size_t>(entity_kind::mailbox)].live == 1);
  advance(11s);
  s = stats();
  CHECK(s.live.empty());
  CHECK(s.kinds[static_cast<size_t>(entity_kind::calendar)].passivations == 1);
  CHECK(s.kinds[static_cast<size_t>(entity_kind::mailbox)].passivations == 1);
}

TEST_CASE_METHOD(fixture, "an unknown organization answers not found",
                 "[actors][directory]") {
  caf::scoped_actor self{sys};
  self->send(directory, route_atom_v, tenant_key(tenant_id{424242}),
             caf::make_message(get_org{admin()}));
  sched.run();
  bool got_error = false;
  self->receive([&](org_record&) { FAIL("unexpected org"); },
                [&](caf::error& err) {
                  got_error = true;
                  CHECK(to_api_error(err).status == 404);
                });
  CHECK(got_error);
  // Probing an id that does not exist leaves no live actor behind.
  auto ks = tenant_stats();
  CHECK(ks.activations == 1);
  CHECK(ks.live == 0);
  CHECK(ks.passivations == 1);
}

TEST_CASE_METHOD(fixture, "a creation that fails leaves no live actor behind",
                 "[actors][directory]") {
  make_org("taken@example.com");
  caf::scoped_actor self{sys};
  // Many attempts on fresh ids, each refused (the address is taken), as a
  // retry loop would make them: none may stay live.
  for (int i = 0; i < 20; ++i) {
    create_org cmd;
    cmd.who.service_admin = true;
    cmd.name = "Again";
    cmd.admin.id = user_id{++next_id};
    cmd.admin.email = "taken@example.com";
    cmd.admin.token_hash = "hash";
    self->send(directory, route_atom_v, tenant_key(tenant_id{++next_id}),
               caf::make_message(cmd));
    sched.run();
    self->receive([&](org_created&) { FAIL("created twice"); },
                  [&](caf::error& err) {
                    CHECK(to_api_error(err).code == "email_taken");
                  });
  }
  auto ks = tenant_stats();
  CHECK(ks.activations == 21);
  CHECK(ks.live == 1);
  CHECK(ks.passivations == 20);
}

TEST_CASE_METHOD(fixture,
                 "an entity that never answers its passivation is stopped at "
                 "the deadline and comes back on the next message",
                 "[actors][directory]") {
  deaf_calendars = true;
  auto org = make_org("deaf@example.com");
  auto o = ask<org_record>(tenant_key(org), get_org{admin()});
  entity_key cal{entity_kind::calendar, org, o.super_admin};
  ask<calendar_status>(cal, status_request{});
  auto kinds = [&] {
    return stats().kinds[static_cast<size_t>(entity_kind::calendar)];
  };
  REQUIRE(kinds().live == 1);
  // Idle for 10 s: asked to passivate, it does not answer; 3 s later the
  // directory stops it by force.
  advance(11s);
  CHECK(kinds().live == 1);
  advance(4s);
  REQUIRE(kinds().live == 0);
  // Buffered or new, the next message activates it again.
  ask<calendar_status>(cal, status_request{});
  CHECK(kinds().live == 1);
  CHECK(kinds().activations == 2);
}

// -- a tenant's page sessions (t15-sessions, actors/tenant/office365.cpp)

TEST_CASE_METHOD(fixture,
                 "a tenant stores a page session of its own active user "
                 "only, and deletes it at sign-out",
                 "[actors][tenant][sessions]") {
  auto created = created_org("sessions@example.com");
  auto org = created.org.id;
  auto user = created.admin.id;
  const int64_t now = 1'800'000'000'000; // the fixture's clock
  auto key = storage::keys::page_session(std::string(64, 'c'));
  auto value = [](tenant_id t, user_id u, int64_t expires) {
    return storage::keys::page_session_value(expires, t, u, "{}");
  };
  auto stored = [&] {
    std::string v;
    bool found = false;
    REQUIRE(!db->get(storage::column::sessions, key, v, found));
    return found ? v : std::string{"<absent>"};
  };
  auto refusal = [&](open_page_session m) {
    caf::scoped_actor self{sys};
    self->send(directory, route_atom_v, tenant_key(org),
               caf::make_message(std::move(m)));
    sched.run();
    std::string code;
    self->receive([&](bool) { code = "stored"; },
                  [&](caf::error& err) { code = to_api_error(err).code; });
    return code;
  };
  // Another organization's, another user's, an expired one, a key that
  // is no page session's: refused, nothing stored.
  CHECK(refusal({user, key, value(tenant_id{org.value + 1}, user, now + 1)})
        == "invalid_session");
  CHECK(refusal({user, key, value(org, user_id{user.value + 1}, now + 1)})
        == "invalid_session");
  CHECK(refusal({user, key, value(org, user, now)}) == "invalid_session");
  CHECK(refusal({user, "wshort", value(org, user, now + 1)})
        == "invalid_session");
  CHECK(stored() == "<absent>");

  CHECK(ask<bool>(tenant_key(org),
                  open_page_session{user, key, value(org, user, now + 1)}));
  CHECK(stored() == value(org, user, now + 1));
  // Signed out: the row goes with the token (which this user no longer
  // holds here: the row goes all the same).
  CHECK_FALSE(
      ask<bool>(tenant_key(org), revoke_page_token{user, "not-held", key}));
  CHECK(stored() == "<absent>");
}
