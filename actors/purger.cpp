#include "actors/purger.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "common/log.hpp"
#include "common/metrics.hpp"
#include "protocol/errors.hpp"
#include "protocol/type_ids.hpp"

namespace crmsync::actors {

namespace {

using namespace crmsync::atom;

void pass(storage::db& db, const purger_config& cfg) {
  storage::purge_counts n;
  auto err = storage::purge_expired(db, cfg.policy, cfg.now_ms(), n);
  auto& m = metrics::node();
  m.purged(metrics::purge_kind::signin_state, n.signin_states);
  m.purged(metrics::purge_kind::session, n.sessions);
  m.purged(metrics::purge_kind::invite, n.invites);
  m.purged(metrics::purge_kind::outbox, n.outbox);
  if (err)
    log::error("purge: stopped early: " + to_api_error(err).message);
  auto total = n.signin_states + n.sessions + n.invites + n.outbox;
  if (total > 0)
    log::info("purge: deleted " + std::to_string(n.signin_states)
              + " sign-in states, " + std::to_string(n.sessions) + " sessions, "
              + std::to_string(n.invites) + " invitations, "
              + std::to_string(n.outbox) + " failed e-mails");
}

caf::behavior purger(caf::event_based_actor* self, storage::db* db,
                     purger_config cfg) {
  self->delayed_send(self, cfg.interval, sweep_atom_v);
  return {
      [=](sweep_atom) {
        pass(*db, cfg);
        self->delayed_send(self, cfg.interval, sweep_atom_v);
      },
  };
}

} // namespace

caf::actor spawn_purger(caf::actor_system& sys, storage::db& db,
                        purger_config cfg) {
  return sys.spawn<caf::detached>(purger, &db, std::move(cfg));
}

} // namespace crmsync::actors
