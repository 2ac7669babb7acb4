#include "actors/purger.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "common/log.hpp"
#include "common/metrics.hpp"
#include "protocol/errors.hpp"
#include "protocol/type_ids.hpp"

namespace crmsync::actors {

namespace {

using namespace crmsync::atom;

/// Counts what a pass deleted (crmsync_purged_rows_total) and says so.
void report(const storage::purge_counts& n, const caf::error& err) {
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

struct purger_state {
  static inline const char* name = "purger";
  bool running = false;
  storage::purge_cursor at;
  storage::purge_counts counts;
};

caf::behavior purger(caf::stateful_actor<purger_state>* self, storage::db* db,
                     purger_config cfg) {
  self->delayed_send(self, cfg.interval, sweep_atom_v);
  return {
      [=](sweep_atom) {
        auto& st = self->state;
        if (st.running)
          return;
        st.running = true;
        st.at = storage::purge_cursor{};
        st.counts = storage::purge_counts{};
        self->send(self, run_atom_v);
      },
      // One step of the pass, then the next one behind whatever else
      // waits for this scheduler thread.
      [=](run_atom) {
        auto& st = self->state;
        auto err = storage::purge_step(*db, cfg.policy, cfg.now_ms(), st.counts,
                                       st.at, cfg.rows_per_step);
        if (!err && !st.at.done()) {
          self->send(self, run_atom_v);
          return;
        }
        report(st.counts, err);
        st.running = false;
        self->delayed_send(self, cfg.interval, sweep_atom_v);
      },
  };
}

} // namespace

caf::actor spawn_purger(caf::actor_system& sys, storage::db& db,
                        purger_config cfg) {
  return sys.spawn(purger, &db, std::move(cfg));
}

} // namespace crmsync::actors
