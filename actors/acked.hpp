// Asynchronous acknowledgement of an actor's writes (ADR 0008, t15-ack).
// In a replicated cluster a write counts once the shard's followers hold
// it (--replication-ack). A handler run through acked() has an ack_scope:
// its writes are stored here at once and do not wait; if any of them
// needs followers, the request is delegated, with the handler's answer,
// to the replicator's acknowledger, which answers the caller once the
// followers confirmed, or with 503 (replication_timeout at
// --replication-timeout, node_unavailable when the shard was lost). The
// actor goes on with its next message meanwhile; no scheduler thread
// waits. Without replication nothing changes: the answer goes at once.
#pragma once

#include <caf/delegated.hpp>
#include <caf/response_promise.hpp>
#include <caf/result.hpp>

#include "protocol/replication.hpp"
#include "storage/write_hook.hpp"

namespace crmsync::actors {

template <class Result>
struct delegated_of;

template <class... Ts>
struct delegated_of<caf::result<Ts...>> {
  using type = caf::delegated<Ts...>;
};

/// Runs `handler` (returning caf::result<T>) inside an actor's handler and
/// answers its result once its writes are acknowledged as required.
template <class Self, class Handler>
auto acked(Self self, Handler&& handler) -> decltype(handler()) {
  using result_type = decltype(handler());
  storage::ack_scope scope;
  result_type r = handler();
  auto ticket = scope.take();
  // An error goes at once (what was written before it is stored here and
  // ships; the caller was not told it succeeded).
  if (!ticket.acknowledger || r.flag != caf::rt_value)
    return r;
  auto rp = self->make_response_promise();
  rp.delegate(ticket.acknowledger, atom::repl_wait_atom_v, ticket.id,
              std::move(r.value));
  return typename delegated_of<result_type>::type{};
}

} // namespace crmsync::actors
