#include "actors/directory.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/ask_deadlines.hpp"
#include "actors/entities.hpp"
#include "actors/idle_ladder.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "protocol/type_ids.hpp"

namespace crmsync::actors {

namespace {

using namespace crmsync::atom;

struct pending_message {
  caf::message msg;
  caf::response_promise rp;
};

struct slot {
  caf::actor handle;
  caf::actor_clock::time_point last_active;
  caf::actor_clock::time_point activated;
  uint64_t messages = 0;
  /// This activation's rung of the idle ladder (calendars and mailboxes).
  uint8_t idle_rung = 0;
  bool stopping = false;
  std::vector<pending_message> buffer;
};

struct directory_state {
  static inline const char* name = "directory";
  std::shared_ptr<const actor_env> env;
  directory_config cfg;
  /// The deadlines of the passivation requests (ask_deadlines.hpp: one
  /// timer, not a clock hand-off per passivated calendar and mailbox).
  ask_deadlines asks;
  std::map<entity_key, slot> slots;
  /// The idle times of calendar and mailbox activations.
  std::optional<idle_ladder> ladder;
  std::map<caf::actor_addr, entity_key> by_addr;
  kind_stats stats[entity_kind_count];
  /// Passivations since memory was last released, and when that was.
  uint64_t stopped_since_trim = 0;
  caf::actor_clock::time_point last_trim{};
};

using dir_ptr = caf::stateful_actor<directory_state>*;

kind_stats& stats_of(dir_ptr self, entity_kind k) {
  return self->state.stats[static_cast<size_t>(k)];
}

/// The kinds that ask to be passivated after their own idle time.
bool on_ladder(entity_kind k) {
  return k == entity_kind::calendar || k == entity_kind::mailbox;
}

slot& activate(dir_ptr self, const entity_key& key) {
  auto& st = self->state;
  auto now = self->clock().now();
  uint8_t rung = on_ladder(key.kind) ? st.ladder->activated(key, now) : 0;
  auto handle = spawn_entity(self->system(), key, st.env,
                             caf::actor_cast<caf::actor>(self),
                             st.ladder->idle_after(rung));
  self->monitor(handle);
  auto& s = st.slots[key];
  s.handle = handle;
  s.idle_rung = rung;
  s.last_active = now;
  s.activated = s.last_active;
  s.stopping = false;
  st.by_addr[handle.address()] = key;
  auto& ks = stats_of(self, key.kind);
  ++ks.activations;
  ++ks.live;
  metrics::node().actor_activated(to_string(key.kind));
  return s;
}

void deliver(dir_ptr self, slot& s, caf::message msg,
             caf::response_promise rp) {
  s.last_active = self->clock().now();
  ++s.messages;
  rp.delegate(s.handle, std::move(msg));
}

void route(dir_ptr self, const entity_key& key, caf::message msg,
           caf::response_promise rp) {
  auto i = self->state.slots.find(key);
  if (i == self->state.slots.end()) {
    auto& s = activate(self, key);
    deliver(self, s, std::move(msg), std::move(rp));
    return;
  }
  if (i->second.stopping) {
    // Held until the old instance is gone, then replayed in order.
    i->second.buffer.push_back({std::move(msg), std::move(rp)});
    return;
  }
  deliver(self, i->second, std::move(msg), std::move(rp));
}

void replay_buffer(dir_ptr self, slot& s) {
  auto buffered = std::move(s.buffer);
  s.buffer.clear();
  for (auto& p : buffered)
    deliver(self, s, std::move(p.msg), std::move(p.rp));
}

// Asks the entity to stop; it stays addressable (buffering) until it is down.
bool begin_passivation(dir_ptr self, const entity_key& key) {
  auto i = self->state.slots.find(key);
  if (i == self->state.slots.end() || i->second.stopping)
    return false;
  i->second.stopping = true;
  auto handle = i->second.handle;
  // An entity that cannot answer is stopped by force; the down message
  // then reactivates it if anything is waiting.
  auto failed = [=](const caf::error& err) {
    log::warn("directory: passivation of " + std::string{to_string(key.kind)}
              + " " + key.tenant.str()
              + " failed: " + self->system().render(err));
    self->send_exit(handle, caf::exit_reason::kill);
  };
  auto id = self->state.asks.add(self, self->state.cfg.stop_timeout, [=] {
    failed(caf::make_error(caf::sec::request_timeout));
  });
  self->request(handle, caf::infinite, passivate_atom_v)
      .then(
          [=](bool agreed) {
            if (!self->state.asks.answered(id))
              return; // forced to stop already
            if (agreed)
              return; // the down message completes the passivation
            auto j = self->state.slots.find(key);
            if (j != self->state.slots.end() && j->second.handle == handle) {
              j->second.stopping = false;
              replay_buffer(self, j->second);
            }
          },
          [=](caf::error& err) {
            if (self->state.asks.answered(id))
              failed(err);
          });
  return true;
}

void on_down(dir_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto a = st.by_addr.find(dm.source);
  if (a == st.by_addr.end())
    return;
  auto key = a->second;
  st.by_addr.erase(a);
  auto i = st.slots.find(key);
  if (i == st.slots.end())
    return;
  auto& ks = stats_of(self, key.kind);
  --ks.live;
  metrics::node().actor_stopped(to_string(key.kind), i->second.stopping);
  ++st.stopped_since_trim;
  if (i->second.stopping) {
    ++ks.passivations;
    if (on_ladder(key.kind))
      st.ladder->passivated(key, i->second.idle_rung, self->clock().now());
  } else {
    log::warn("directory: " + std::string{to_string(key.kind)} + " "
              + key.tenant.str()
              + " stopped unexpectedly: " + self->system().render(dm.reason));
  }
  auto buffered = std::move(i->second.buffer);
  st.slots.erase(i);
  if (buffered.empty())
    return;
  auto& s = activate(self, key);
  for (auto& p : buffered)
    deliver(self, s, std::move(p.msg), std::move(p.rp));
}

live_actor describe(dir_ptr self, const entity_key& key, const slot& s) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  auto now = self->clock().now();
  live_actor la;
  la.key = key;
  la.idle_ms = duration_cast<milliseconds>(now - s.last_active).count();
  la.active_ms = duration_cast<milliseconds>(now - s.activated).count();
  la.passivate_in_ms
      = std::max<int64_t>(0, self->state.cfg.idle_timeout.count() - la.idle_ms);
  la.messages = s.messages;
  la.stopping = s.stopping;
  return la;
}

// One live entity for the admin API: what the directory knows plus the
// entity's own mailbox length (asked without counting as activity, so
// looking does not keep it alive). Not live: not_found.
caf::result<live_actor> introspect(dir_ptr self, const entity_key& key) {
  auto i = self->state.slots.find(key);
  if (i == self->state.slots.end())
    return make_crm_error(crm_errc::not_found, "not_found",
                          "no live " + std::string{to_string(key.kind)}
                              + " actor with this id on this node");
  auto la = describe(self, key, i->second);
  if (la.stopping)
    return la; // it may never answer again
  auto rp = self->make_response_promise<live_actor>();
  self->request(i->second.handle, std::chrono::seconds(2), stats_atom_v)
      .then(
          [=](uint64_t queued) mutable {
            auto out = la;
            out.mailbox = static_cast<int64_t>(queued);
            rp.deliver(out);
          },
          [=](caf::error&) mutable { rp.deliver(la); }); // busy: unknown
  return rp;
}

void sweep(dir_ptr self) {
  auto now = self->clock().now();
  std::vector<entity_key> idle;
  for (auto& [key, s] : self->state.slots)
    if (!s.stopping && now - s.last_active >= self->state.cfg.idle_timeout)
      idle.push_back(key);
  for (auto& key : idle)
    begin_passivation(self, key);
  self->state.ladder->forget_old(now);
  // What the entities stopped since the last sweep freed stays in the
  // allocator's arenas (resident) until it is released.
  auto& st = self->state;
  if (st.stopped_since_trim > 0 && st.cfg.release_memory
      && st.cfg.trim_interval.count() > 0
      && now - st.last_trim >= st.cfg.trim_interval) {
    st.stopped_since_trim = 0;
    st.last_trim = now;
    st.cfg.release_memory();
  }
}

caf::behavior directory(dir_ptr self, std::shared_ptr<const actor_env> env,
                        directory_config cfg) {
  self->state.env = std::move(env);
  self->state.cfg = cfg;
  self->state.ladder.emplace(cfg.entity_idle, cfg.idle_timeout);
  for (size_t k = 0; k < entity_kind_count; ++k)
    self->state.stats[k].kind = static_cast<entity_kind>(k);
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm); });
  self->set_exit_handler([=](caf::exit_msg& em) {
    // Take the entities down with the directory (node shutdown).
    for (auto& [key, s] : self->state.slots) {
      // Held messages would never be answered (a dropped promise in CAF
      // 0.17 is silent): fail them now so callers need not time out.
      for (auto& p : s.buffer)
        p.rp.deliver(caf::make_error(caf::sec::request_receiver_down));
      s.buffer.clear();
      self->send_exit(s.handle, em.reason);
    }
    self->quit(em.reason);
  });
  self->delayed_send(self, cfg.sweep_interval, sweep_atom_v);
  return {
      [=](route_atom, const entity_key& key, caf::message& msg) {
        auto rp = self->make_response_promise();
        route(self, key, std::move(msg), rp);
        return rp;
      },
      // A durable reminder came due (actors/reminders.hpp): it goes to
      // its entity, activated if need be.
      [=](reminder_due& due) {
        auto key = due.target;
        route(self, key, caf::make_message(std::move(due)),
              self->make_response_promise());
      },
      [=](passivate_atom, const entity_key& key) -> bool {
        return begin_passivation(self, key);
      },
      [=](stats_atom) -> directory_stats {
        directory_stats out;
        out.idle_timeout_ms = self->state.cfg.idle_timeout.count();
        for (auto& ks : self->state.stats)
          out.kinds.push_back(ks);
        for (auto& [key, s] : self->state.slots)
          out.live.push_back(describe(self, key, s));
        return out;
      },
      [=](stats_atom, const entity_key& key) -> caf::result<live_actor> {
        return introspect(self, key);
      },
      [=](sweep_atom, uint64_t generation) {
        self->state.asks.sweep(self, generation);
      },
      [=](sweep_atom) {
        sweep(self);
        self->delayed_send(self, self->state.cfg.sweep_interval, sweep_atom_v);
      },
  };
}

} // namespace

caf::actor spawn_directory(caf::actor_system& sys,
                           std::shared_ptr<const actor_env> env,
                           directory_config cfg) {
  return sys.spawn(directory, std::move(env), cfg);
}

} // namespace crmsync::actors
