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
#include <memory>

#include <caf/fwd.hpp>

#include "actors/env.hpp"
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

governor_actor spawn_governor(caf::actor_system& sys,
                              std::shared_ptr<const actor_env> env,
                              governor_config cfg);

} // namespace crmsync::actors
