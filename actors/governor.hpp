// The Graph governor: the node's requests per second to Microsoft Graph,
// capped per app (node-wide) and per tenant, shared fairly between tenants.
//
// An actor, not a shared object with a lock: callers are actors, and a
// permit has to arrive later without anyone waiting, which is exactly a
// response promise; the queues and windows then have one owner and need no
// lock. A caller asks with `request(governor, timeout, permit_request{t})`
// and sends its Graph request when the graph_permit arrives; nobody blocks
// a thread. Requests wait in one queue per tenant, and permits go
// round-robin over the tenants with waiting requests, so a tenant with
// 10,000 waiting delays another tenant's single request by about one slot.
// A permit is counted when it is granted, so none may go to nobody: the
// governor watches every requester with waiting requests, and when one
// dies its requests leave the queues without using a slot; a request
// still waiting after its `not_after_ms` (the asker's timeout) is answered
// with an error instead of a permit. Caps hold in
// any sliding second (actors/rate_window.hpp). Time is env->now_ms.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "actors/rate_window.hpp"
#include "protocol/interfaces.hpp"

namespace crmsync::actors {

struct governor_config {
  /// Requests per second for the app across all tenants. Graph's global
  /// limit is 2,000 requests per second per app (GRAPH-FACTS.md line 14,
  /// contrib concepts/throttling-limits.md; a newer note says 130,000 per
  /// 10 s, so the older, lower figure is the safe default).
  uint32_t app_per_second = 2000;
  /// Requests per second for one tenant. Graph's app+tenant quota is
  /// 3,500 requests per 10 s for the smallest tenants (< 50 users; M: 5,000,
  /// L: 8,000) (GRAPH-FACTS.md line 51, from the identity section of
  /// throttling-limits.md): 350/s holds for every tenant size.
  uint32_t tenant_per_second = 350;
};

/// The governor's caps (the app's window and each tenant's), shared by
/// the actor and its callers. A caller that finds no request waiting in
/// the actor's queues and room in both windows takes its permit here, at
/// once and without a message: the common case, since the caps are far
/// above what a node usually sends. Otherwise it asks the actor, which
/// queues it fairly; with a request waiting nobody takes a permit here, so
/// the queue is never overtaken. (Asking the actor for every Graph call
/// cost two messages and a deadline each; perf, steady-state benchmark.)
class permit_gate {
public:
  permit_gate(governor_config cfg, std::function<int64_t()> now_ms);

  /// A permit for `tenant` now, if nobody waits and both caps admit it.
  bool try_take(uint64_t tenant);

  const governor_config& config() const {
    return cfg_;
  }

  // -- for the governor actor (actors/governor.cpp) --------------------------

  /// Held while the windows or the count of waiting requests are read or
  /// changed.
  std::mutex mtx;
  rate_window app;
  /// The windows of tenants that asked recently.
  std::unordered_map<uint64_t, rate_window> tenants;
  /// Requests waiting in the actor's queues.
  uint64_t waiting = 0;
  /// Permits granted, here and by the actor.
  uint64_t granted = 0;
  std::function<int64_t()> now;

  /// The window of `t` (created on first use). With mtx held.
  rate_window& tenant(uint64_t t) {
    return tenants.try_emplace(t, cfg_.tenant_per_second).first->second;
  }

  /// Forgets the windows of tenants with no permit that still counts and
  /// no request waiting (`queued(t)`); at most once a second, since it
  /// visits every tenant. With mtx held.
  template <class Queued>
  void forget_idle(int64_t at, Queued queued) {
    if (at - swept_ms_ < 1000)
      return;
    swept_ms_ = at;
    for (auto i = tenants.begin(); i != tenants.end();) {
      if (i->second.idle(at) && !queued(i->first))
        i = tenants.erase(i);
      else
        ++i;
    }
  }

private:
  governor_config cfg_;
  int64_t swept_ms_ = std::numeric_limits<int64_t>::min() / 2;
};

governor_actor spawn_governor(caf::actor_system& sys,
                              std::shared_ptr<const actor_env> env,
                              governor_config cfg);

/// The governor over `gate` (which its callers may take permits from).
governor_actor spawn_governor(caf::actor_system& sys,
                              std::shared_ptr<permit_gate> gate);

} // namespace crmsync::actors
