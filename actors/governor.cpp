#include "actors/governor.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <unordered_map>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/rate_window.hpp"
#include "protocol/errors.hpp"

namespace crmsync::actors {

namespace {

constexpr int64_t no_time = std::numeric_limits<int64_t>::max();

struct waiter {
  caf::typed_response_promise<graph_permit> promise;
  caf::actor_addr requester;
  int64_t not_after_ms = 0; ///< 0: waits as long as it takes
};

struct governor_state {
  static inline const char* name = "governor";
  /// The caps and the count of waiting requests (shared with callers).
  std::shared_ptr<permit_gate> gate;
  /// Waiting requests by tenant.
  std::unordered_map<uint64_t, std::deque<waiter>> queues;
  /// Tenants with waiting requests, in round-robin order.
  std::deque<uint64_t> ring;
  /// Waiting requests per watched requester.
  std::unordered_map<caf::actor_addr, uint64_t> requesters;
  uint64_t generation = 0;
  int64_t armed_ms = no_time;
};

using self_ptr = governor_actor::stateful_pointer<governor_state>;

void arm(self_ptr self, int64_t at) {
  auto& st = self->state;
  if (at == no_time || at >= st.armed_ms)
    return;
  st.armed_ms = at;
  auto gen = ++st.generation;
  auto delay = std::max<int64_t>(at - st.gate->now(), 0);
  self->delayed_send(self, std::chrono::milliseconds(delay), atom::wake_atom_v,
                     gen);
}

/// One waiting request fewer for `who`: unwatched at zero.
void release(self_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  auto i = st.requesters.find(who);
  if (i == st.requesters.end())
    return;
  if (--i->second == 0) {
    self->demonitor(who);
    st.requesters.erase(i);
  }
}

/// Answers the requests at the head of `q` whose askers stopped waiting,
/// so that no permit goes to a request nobody waits for any more. With the
/// gate's mutex held.
void drop_expired(self_ptr self, std::deque<waiter>& q, int64_t now) {
  auto& st = self->state;
  while (!q.empty() && q.front().not_after_ms != 0
         && q.front().not_after_ms <= now) {
    auto w = std::move(q.front());
    q.pop_front();
    --st.gate->waiting;
    w.promise.deliver(caf::make_error(caf::sec::request_timeout));
    release(self, w.requester);
  }
}

/// Grants permits while the app's and the tenants' windows allow, taking
/// one request per tenant in turn; then arms a wake-up for the first time
/// one more could go, and forgets tenants that no longer matter.
void pump(self_ptr self) {
  auto& st = self->state;
  auto& gate = *st.gate;
  std::lock_guard<std::mutex> guard{gate.mtx};
  auto now = gate.now();
  int64_t wake = no_time;
  while (!st.ring.empty()) {
    if (!gate.app.admits(now)) {
      wake = gate.app.next_free(now);
      break;
    }
    // The next tenant in turn whose own cap admits one more.
    bool granted = false;
    for (size_t tried = 0, n = st.ring.size(); tried < n; ++tried) {
      auto t = st.ring.front();
      st.ring.pop_front();
      auto& q = st.queues.at(t);
      drop_expired(self, q, now);
      if (q.empty()) {
        st.queues.erase(t);
        continue; // leaves the ring
      }
      auto& window = gate.tenant(t);
      if (!window.admits(now)) {
        wake = std::min(wake, window.next_free(now));
        st.ring.push_back(t);
        continue;
      }
      auto w = std::move(q.front());
      q.pop_front();
      --gate.waiting;
      if (!q.empty())
        st.ring.push_back(t); // back of the line: the others go first
      else
        st.queues.erase(t);
      window.record(now);
      gate.app.record(now);
      ++gate.granted;
      w.promise.deliver(graph_permit{tenant_id{t}});
      release(self, w.requester);
      granted = true;
      break;
    }
    if (!granted)
      break; // every waiting tenant is at its cap: `wake` says until when
  }
  gate.forget_idle(now, [&](uint64_t t) { return st.queues.count(t) != 0; });
  arm(self, wake);
}

/// Drops every waiting request of a requester that is gone: its permits
/// would be granted to nobody and cost the others a slot each.
void forget(self_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  st.requesters.erase(who);
  std::lock_guard<std::mutex> guard{st.gate->mtx};
  std::deque<uint64_t> ring;
  for (auto t : st.ring) {
    auto& q = st.queues.at(t);
    auto before = q.size();
    q.erase(std::remove_if(q.begin(), q.end(),
                           [&](const waiter& w) { return w.requester == who; }),
            q.end());
    st.gate->waiting -= before - q.size();
    if (!q.empty())
      ring.push_back(t);
    else
      st.queues.erase(t);
  }
  st.ring = std::move(ring);
}

governor_actor::behavior_type
governor_behavior(self_ptr self, std::shared_ptr<permit_gate> gate) {
  auto& st = self->state;
  st.gate = std::move(gate);
  self->set_down_handler([=](caf::down_msg& dm) {
    forget(self, dm.source);
    pump(self);
  });
  return {
      [=](permit_request& r) -> caf::result<graph_permit> {
        auto& st = self->state;
        auto who = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (!who)
          return make_crm_error(crm_errc::invalid_input, "no_requester",
                                "a permit needs a requester to receive it");
        auto rp = self->make_response_promise<graph_permit>();
        {
          std::lock_guard<std::mutex> guard{st.gate->mtx};
          auto& q = st.queues[r.tenant.value];
          if (q.empty())
            st.ring.push_back(r.tenant.value);
          q.push_back(waiter{rp, who, r.not_after_ms});
          ++st.gate->waiting;
        }
        if (st.requesters[who]++ == 0)
          self->monitor(who);
        pump(self);
        return rp;
      },
      [=](atom::stats_atom) -> governor_stats {
        auto& st = self->state;
        std::lock_guard<std::mutex> guard{st.gate->mtx};
        return governor_stats{st.gate->granted, st.gate->waiting,
                              st.ring.size(), st.requesters.size(),
                              st.gate->tenants.size()};
      },
      [=](atom::wake_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen != st.generation)
          return;
        st.armed_ms = no_time;
        pump(self);
      },
  };
}

} // namespace

permit_gate::permit_gate(governor_config cfg, std::function<int64_t()> now_ms)
    : app(cfg.app_per_second), now(std::move(now_ms)), cfg_(cfg) {
  // nop
}

bool permit_gate::try_take(uint64_t t) {
  std::lock_guard<std::mutex> guard{mtx};
  if (waiting != 0)
    return false; // the queue goes first
  auto at = now();
  forget_idle(at, [](uint64_t) { return false; });
  if (!app.admits(at))
    return false;
  auto& window = tenant(t);
  if (!window.admits(at))
    return false;
  window.record(at);
  app.record(at);
  ++granted;
  return true;
}

governor_actor spawn_governor(caf::actor_system& sys,
                              std::shared_ptr<permit_gate> gate) {
  return sys.spawn(governor_behavior, std::move(gate));
}

governor_actor spawn_governor(caf::actor_system& sys,
                              std::shared_ptr<const actor_env> env,
                              governor_config cfg) {
  return spawn_governor(sys, std::make_shared<permit_gate>(cfg, env->now_ms));
}

} // namespace crmsync::actors
