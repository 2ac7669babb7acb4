// The calendar actor that syncs: one per user whose CRM calendar is synced
// with the product's calendar in their Office 365 mailbox (R13-R21).
//
// It owns the user's sync state machine (enable -> create calendar ->
// initial sync -> subscribe -> active; delta on notification; outbox push;
// conflicts; the mass-delete guard; disable; calendar gone). Every Graph
// call is started on graph::client's asynchronous interface and its answer
// comes back to the actor as a message; the tenant actor is asked with
// request/then; the pause between two runs and the backoff after a failed
// one are delayed messages to itself. No thread waits. The decisions are
// the pure functions of sync/initial.hpp, sync/apply.hpp,
// sync/conflict.hpp, sync/outbox.hpp and sync/guard.hpp.
//
// Spawned by the node's directory when a message is routed to
// entity_key{calendar, org, user} (actor_env::spawn_calendar), so it is a
// virtual actor like the others: activated by a CRM write (wake_atom), a
// webhook notification (notify_atom), a resync (resync_atom) or its
// reconciliation reminder (reminder_due), and passivated by the directory
// when idle (it refuses while a run, a queued run or a retry is pending).
//
// What the node reports about all of them (admin pages, metrics, a shard
// move waiting for runs) lives in the shared sync_context, which the
// actors keep up to date; sync/service.hpp reads it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/governor.hpp"
#include "graph/client.hpp"
#include "protocol/ids.hpp"
#include "protocol/messages.hpp"
#include "storage/db.hpp"
#include "sync/notify_gate.hpp"

namespace crmsync::sync {

/// What a calendar actor asks of Graph: graph::client's asynchronous calls
/// (graph_client_port), or a script in tests. Each callback runs exactly
/// once, on any thread; the actor hands the result to itself.
class graph_port {
public:
  virtual ~graph_port() = default;
  virtual void start(graph::call_spec call,
                     graph::callback<graph::response> done)
      = 0;
  virtual void start_page(std::string tenant, std::string path_or_url,
                          graph::callback<graph::page> done)
      = 0;
  virtual void
  start_batch(std::string tenant, std::string mailbox,
              std::vector<graph::batch_request> requests,
              graph::callback<std::vector<graph::batch_response>> done)
      = 0;
  /// The tenant is no longer served (its calendars torn down): whatever is
  /// cached for it (the app-only token) is dropped.
  virtual void forget_tenant(const std::string& tenant) {
    static_cast<void>(tenant);
  }
};

/// The node's graph::client as a graph_port.
class graph_client_port : public graph_port {
public:
  explicit graph_client_port(graph::client& c) : client_(c) {}
  void start(graph::call_spec call,
             graph::callback<graph::response> done) override;
  void start_page(std::string tenant, std::string path_or_url,
                  graph::callback<graph::page> done) override;
  void start_batch(
      std::string tenant, std::string mailbox,
      std::vector<graph::batch_request> requests,
      graph::callback<std::vector<graph::batch_response>> done) override;
  void forget_tenant(const std::string& tenant) override;

private:
  graph::client& client_;
};

struct service_config {
  /// How Microsoft reaches this node (webhook URLs).
  std::string public_url;
  /// R17: most CRM events sent by the initial sync.
  size_t max_initial_events = 5000;
  /// The delta window around now.
  std::chrono::hours window_past{24 * 365};
  std::chrono::hours window_future{24 * 365 * 2};
  /// Subscription lifetime asked for; renewed when half of it is left.
  std::chrono::minutes subscription_lifetime{4200};
  /// How often every active user is reconciled (delta without a
  /// notification) and their subscription checked: a periodic durable
  /// reminder per user at the user's own phase of the interval
  /// (actors/reminders.hpp), so the work per second is users / interval.
  std::chrono::seconds reconcile_interval{300};
  /// The node's reminders actor (actors/reminders.hpp); null: none.
  caf::actor reminders;
  /// The node's Graph governor (actors/governor.hpp): every Graph call of
  /// a calendar waits for its permit. Null: calls go at once.
  caf::actor governor;
  /// The governor's caps, where a call takes its permit without asking
  /// the actor when nobody waits (actors/governor.hpp). Null: always ask.
  std::shared_ptr<actors::permit_gate> governor_gate;
  /// How long a call waits for a permit before the run counts as
  /// throttled (and is retried).
  std::chrono::milliseconds permit_timeout{60000};
  /// A calendar with nothing pending this long after its last run asks
  /// the directory to passivate it (sooner than the directory's own idle
  /// timeout: reminders wake every synced user once per interval, and
  /// only the few with work should stay in memory). The directory gives
  /// an activation soon after a passivation a longer one
  /// (actors/idle_ladder.hpp).
  std::chrono::milliseconds idle_after{10000};
  /// Least time between the starts of two runs of one user.
  std::chrono::milliseconds min_run_gap{250};
  /// Initial sync: $batch requests of one user in flight at once (the
  /// mailbox's concurrency; graph::client enforces it in any case).
  size_t parallel_batches = 4;
  /// Mass-delete guard: a run that would delete more than this share of a
  /// user's synced events (and at least `mass_delete_minimum`) waits for
  /// an administrator.
  double mass_delete_share = 0.5;
  size_t mass_delete_minimum = 10;
  std::chrono::milliseconds actor_timeout{10000};
  /// Most notifications one webhook POST may carry (Graph batches far
  /// fewer); a larger POST is refused whole, before any lookup.
  size_t max_notifications_per_post = 1000;
  /// Whether this node serves a tenant now (empty: every tenant). In a
  /// cluster a shard moving away stops its users' runs at their start.
  std::function<bool(tenant_id)> owns;
  /// Wall clock, UTC ms.
  std::function<int64_t()> now_ms;
};

/// What is scheduled for one user (admin introspection). Times are wall
/// clock, UTC ms; 0 = none.
struct user_timers {
  bool running = false;        ///< a run is in progress
  bool again = false;          ///< and another one is queued behind it
  bool full_round = false;     ///< a resync waits for (or is in) a good run
  int64_t retry_at_ms = 0;     ///< the last run failed: next attempt
  int retry_attempt = 0;       ///< failed runs in a row
  int64_t reconcile_at_ms = 0; ///< the user's next reconciliation
  int64_t renew_at_ms = 0;     ///< subscription renewal (half its lifetime)
};

using user_key = std::pair<uint64_t, uint64_t>;

/// Shared by every calendar actor of a node and the sync service.
struct sync_context {
  sync_context(storage::db& db, graph_port& graph, service_config cfg)
      : db(db), graph(graph), cfg(std::move(cfg)) {}

  storage::db& db;
  graph_port& graph;
  const service_config cfg;
  /// The node's directory (asking the tenant actor); set before the first
  /// calendar is activated, read-only after.
  caf::actor directory;
  /// Node shutdown: runs end at their next step, and what Graph calls cut
  /// short report is not taken for a failure.
  std::atomic<bool> halt{false};

  struct health {
    calendar_state state = calendar_state::disabled;
    int64_t subscription_expires_ms = 0;
  };

  /// Written by the actors, read by the service (under `mtx`): the run
  /// state of users that have one (running, queued, retrying, resync),
  /// and every known user's state for the metrics.
  mutable std::mutex mtx;
  struct published {
    user_timers timers;
    uint64_t actor = 0; ///< the activation that published it (caf::actor_id)
  };
  std::map<user_key, published> runs;
  std::map<user_key, health> states;

  std::atomic<uint64_t> run_count{0};
  std::atomic<uint64_t> notifications_accepted{0};
  std::atomic<uint64_t> notifications_rejected{0};
  std::atomic<uint64_t> failed_runs{0};
  /// The webhook ingress's pending wake-ups (one per calendar).
  notify_gate notifies;
};

/// Spawns the syncing calendar actor of one user (the directory's
/// factory for entity_kind::calendar).
/// `idle_after`: how long this activation stays in memory once idle before
/// it asks to be passivated (the directory's idle_ladder); zero:
/// ctx->cfg.idle_after.
caf::actor spawn_calendar_sync(caf::actor_system& sys, tenant_id org,
                               user_id user, std::shared_ptr<sync_context> ctx,
                               std::chrono::milliseconds idle_after = {});

/// Sets (state other than disabled) or cancels the user's periodic
/// reconciliation reminder at the user's own phase of the interval.
void keep_reminder(const sync_context& ctx, tenant_id org, user_id user,
                   bool on);

} // namespace crmsync::sync
