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

struct tenant_queue {
  explicit tenant_queue(uint32_t per_second) : window(per_second) {
    // nop
  }
  std::deque<waiter> waiting;
  rate_window window;
};

struct governor_state {
  static inline const char* name = "governor";
  std::shared_ptr<const actor_env> env;
  governor_config cfg;
  rate_window app{1};
  /// Tenants with waiting requests or a window that still counts.
  std::unordered_map<uint64_t, tenant_queue> tenants;
  /// Tenants with waiting requests, in round-robin order.
  std::deque<uint64_t> ring;
  /// Waiting requests per watched requester.
  std::unordered_map<caf::actor_addr, uint64_t> requesters;
  uint64_t queued = 0;
  uint64_t granted = 0;
  uint64_t generation = 0;
  int64_t armed_ms = no_time;
  /// When tenants without waiting requests and recent permits were last
  /// forgotten.
  int64_t swept_ms = std::numeric_limits<int64_t>::min() / 2;
};

using self_ptr = governor_actor::stateful_pointer<governor_state>;

void arm(self_ptr self, int64_t at) {
  auto& st = self->state;
  if (at == no_time || at >= st.armed_ms)
    return;
  st.armed_ms = at;
  auto gen = ++st.generation;
  auto delay = std::max<int64_t>(at - st.env->now_ms(), 0);
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
/// so that no permit goes to a request nobody waits for any more.
void drop_expired(self_ptr self, tenant_queue& q, int64_t now) {
  auto& st = self->state;
  while (!q.waiting.empty() && q.waiting.front().not_after_ms != 0
         && q.waiting.front().not_after_ms <= now) {
    auto w = std::move(q.waiting.front());
    q.waiting.pop_front();
    --st.queued;
    w.promise.deliver(caf::make_error(caf::sec::request_timeout));
    release(self, w.requester);
  }
}

/// Grants permits while the app's and the tenants' windows allow, taking
/// one request per tenant in turn; then arms a wake-up for the first time
/// one more could go, and forgets tenants that no longer matter.
void pump(self_ptr self) {
  auto& st = self->state;
  auto now = st.env->now_ms();
  int64_t wake = no_time;
  while (!st.ring.empty()) {
    if (!st.app.admits(now)) {
      wake = st.app.next_free(now);
      break;
    }
    // The next tenant in turn whose own cap admits one more.
    bool granted = false;
    for (size_t tried = 0, n = st.ring.size(); tried < n; ++tried) {
      auto t = st.ring.front();
      st.ring.pop_front();
      auto& q = st.tenants.at(t);
      drop_expired(self, q, now);
      if (q.waiting.empty())
        continue; // leaves the ring
      if (!q.window.admits(now)) {
        wake = std::min(wake, q.window.next_free(now));
        st.ring.push_back(t);
        continue;
      }
      auto w = std::move(q.waiting.front());
      q.waiting.pop_front();
      --st.queued;
      if (!q.waiting.empty())
        st.ring.push_back(t); // back of the line: the others go first
      q.window.record(now);
      st.app.record(now);
      ++st.granted;
      w.promise.deliver(graph_permit{tenant_id{t}});
      release(self, w.requester);
      granted = true;
      break;
    }
    if (!granted)
      break; // every waiting tenant is at its cap: `wake` says until when
  }
  // At most once a second, not per request: the sweep visits every tenant.
  if (now - st.swept_ms >= 1000) {
    st.swept_ms = now;
    for (auto i = st.tenants.begin(); i != st.tenants.end();) {
      if (i->second.waiting.empty() && i->second.window.idle(now))
        i = st.tenants.erase(i);
      else
        ++i;
    }
  }
  arm(self, wake);
}

/// Drops every waiting request of a requester that is gone: its permits
/// would be granted to nobody and cost the others a slot each.
void forget(self_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  st.requesters.erase(who);
  std::deque<uint64_t> ring;
  for (auto t : st.ring) {
    auto& q = st.tenants.at(t).waiting;
    auto before = q.size();
    q.erase(std::remove_if(q.begin(), q.end(),
                           [&](const waiter& w) { return w.requester == who; }),
            q.end());
    st.queued -= before - q.size();
    if (!q.empty())
      ring.push_back(t);
  }
  st.ring = std::move(ring);
}

governor_actor::behavior_type
governor_behavior(self_ptr self, std::shared_ptr<const actor_env> env,
                  governor_config cfg) {
  auto& st = self->state;
  st.env = std::move(env);
  st.cfg = cfg;
  st.app = rate_window{cfg.app_per_second};
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
        auto& q
            = st.tenants.try_emplace(r.tenant.value, st.cfg.tenant_per_second)
                  .first->second;
        if (q.waiting.empty())
          st.ring.push_back(r.tenant.value);
        q.waiting.push_back(waiter{rp, who, r.not_after_ms});
        ++st.queued;
        if (st.requesters[who]++ == 0)
          self->monitor(who);
        pump(self);
        return rp;
      },
      [=](atom::stats_atom) -> governor_stats {
        auto& st = self->state;
        return governor_stats{st.granted, st.queued, st.ring.size(),
                              st.requesters.size(), st.tenants.size()};
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

governor_actor spawn_governor(caf::actor_system& sys,
                              std::shared_ptr<const actor_env> env,
                              governor_config cfg) {
  return sys.spawn(governor_behavior, std::move(env), cfg);
}

} // namespace crmsync::actors
