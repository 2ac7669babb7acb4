// The calendar sync engine: two-way sync of each user's CRM calendar with
// the product's calendar in their Office 365 mailbox (R13-R21).
//
// Every step of a user's sync is a blocking Graph call, so the engine runs
// on its own threads, never in an event-based actor: one run per user at a
// time (a request that arrives during a run makes it go round once more,
// so bursts coalesce), users in parallel. A run reads what the tenant
// actor queued (the sync request, the sync outbox) and what webhooks
// stored (the inbox), talks to Graph through graph::client, and writes
// CRM changes back through the tenant actor (apply_office365). The engine
// is the only writer of the calendar status, the links and the
// subscription lookups. Its decisions are pure functions it calls:
// sync/initial.hpp (what the initial sync sends), sync/apply.hpp (one
// delta item), sync/conflict.hpp, sync/outbox.hpp (one CRM change),
// sync/guard.hpp (mass deletes). Thread-safe; stop() before the actor
// system goes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "common/work_pool.hpp"
#include "protocol/ids.hpp"
#include "protocol/messages.hpp"
#include "storage/db.hpp"

namespace crmsync::graph {
class client;
} // namespace crmsync::graph

namespace crmsync::sync {

enum class ingest_result { stored, malformed, too_many, unavailable };

struct engine_config {
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
  /// (actors/reminders.hpp), so the work per second is users / interval,
  /// never a round of everyone at once, and a restart does not run every
  /// user again.
  std::chrono::seconds reconcile_interval{300};
  /// The node's reminders actor (actors/reminders.hpp); its `reminder_due`
  /// reaches the engine through spawn_reminder_bridge().
  caf::actor reminders;
  size_t threads = 4;
  /// Least time between the starts of two runs of one user.
  std::chrono::milliseconds min_run_gap{250};
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
  /// cluster a shard moving away stops its users' runs at their next step.
  std::function<bool(tenant_id)> owns;
  /// Wall clock, UTC ms.
  std::function<int64_t()> now_ms;
};

/// What the engine has scheduled for one user (admin introspection). Times
/// are wall clock, UTC ms; 0 = none.
struct user_timers {
  bool running = false;        ///< a run is in progress
  bool again = false;          ///< and another one is queued behind it
  bool full_round = false;     ///< a resync waits for (or is in) a good run
  int64_t retry_at_ms = 0;     ///< the last run failed: next attempt
  int retry_attempt = 0;       ///< failed runs in a row
  int64_t reconcile_at_ms = 0; ///< the user's next reconciliation
  int64_t renew_at_ms = 0;     ///< subscription renewal (half its lifetime)
};

/// What the engine last saw of its users (metrics, the admin page): kept
/// in memory from each run's end, so reading it costs no storage scan.
struct sync_health {
  std::map<std::string, uint64_t> users_by_state;
  uint64_t subscriptions_live = 0;
  uint64_t subscriptions_expiring = 0; ///< within the next hour
};

struct engine_stats {
  uint64_t runs = 0;
  uint64_t notifications_accepted = 0;
  uint64_t notifications_rejected = 0; ///< unknown subscription or clientState
  uint64_t errors = 0;
};

class engine {
public:
  engine(caf::actor_system& sys, caf::actor directory, storage::db& db,
         graph::client& graph, engine_config cfg);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  /// Resumes every user whose sync is on or not yet wound down (after a
  /// restart) and starts the reconciliation timer.
  void start();

  /// Tells runs to stop at their next step, without waiting: call before
  /// cutting Graph calls short (graph::client::shutdown), so that what is
  /// cut short is not taken for a failure.
  void begin_stop();

  /// Stops the threads; a run in progress ends after its current Graph
  /// call (what it did is stored, and start() resumes it).
  void stop();

  /// Something changed for this user (request, outbox): run soon.
  void wanted(tenant_id org, user_id user);

  /// Stores a Graph change-notification POST body durably in the inbox
  /// (notifications with an unknown subscription or a wrong clientState are
  /// rejected and counted) and schedules the users it concerns. Says why
  /// not when the body is not a notification collection (400), holds more
  /// than `max_notifications_per_post` items (413), or storage failed (503,
  /// so that Graph retries).
  ingest_result ingest(std::string_view body, bool lifecycle);

  size_t max_notifications_per_post() const {
    return cfg_.max_notifications_per_post;
  }

  engine_stats stats() const;
  sync_health health() const;

  /// Resync: the user's next run reads the whole window again, as after a
  /// 410 from Graph (the delta link is dropped; links keep it free of
  /// duplicates, and a full round finds deletions). Kept until a run with
  /// it gets through. Schedules the run.
  void resync(tenant_id org, user_id user);

  /// True while a run of one of the tenant's users is in progress or due
  /// (a shard move waits for none).
  bool busy(tenant_id org) const;
  /// Takes on the tenant's users whose sync is on or winding down (its
  /// data just arrived here by a shard move), as start() does at boot.
  void adopt(tenant_id org);
  /// The user's timers and run state; reads the stored calendar status for
  /// the subscription's expiry.
  user_timers timers(tenant_id org, user_id user) const;

private:
  struct user_run {
    bool running = false;
    bool again = false;
    bool notified = false; ///< a notification came: the next run reads delta
    int64_t queued_ms = 0; ///< first notification not yet applied (lag)
    /// Start of the previous run of this burst (the run gap counts from it).
    std::chrono::steady_clock::time_point last_start{};
  };
  struct user_health {
    calendar_state state = calendar_state::disabled;
    int64_t subscription_expires_ms = 0;
  };
  using user_key = std::pair<uint64_t, uint64_t>;

  void schedule(tenant_id org, user_id user, bool notified);
  /// A user's runs, back to back while more is wanted, on a pool thread.
  /// A run due before its gap has passed is handed to the reconciler's
  /// timer (gap_waits_) and the pool thread goes to other users.
  void run_loop(tenant_id org, user_id user);
  /// One run; false when it recorded a failure. `full`: drop the delta
  /// link first (resync).
  bool run_user(tenant_id org, user_id user, bool notified, bool full);
  void reconcile_loop();
  /// Takes on the users under `prefix` after a start or a shard move.
  void resume(const std::string& prefix);

  caf::actor_system& sys_;
  caf::actor directory_;
  storage::db& db_;
  graph::client& graph_;
  engine_config cfg_;
  mutable std::mutex mtx_;
  std::mutex stop_mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> halt_{false}; ///< read by runs without the lock
  std::map<user_key, user_run> runs_;
  struct retry {
    std::chrono::steady_clock::time_point due;
    int attempt = 0;
  };
  std::map<user_key, retry> retries_; ///< users whose last run failed
  std::map<user_key, user_health> health_;
  std::set<user_key> full_rounds_; ///< resyncs not yet through
  /// Runs waiting for their gap to pass, by when it does.
  std::multimap<std::chrono::steady_clock::time_point, user_key> gap_waits_;
  /// Users whose reconciliation reminder this engine has set.
  std::set<user_key> reminded_;
  /// Sets or cancels the user's reconciliation reminder as its state says.
  void keep_reminder(tenant_id org, user_id user, calendar_state state);
  engine_stats stats_;
  std::unique_ptr<work_pool> pool_;
  std::thread reconciler_;
};

/// The handler the node's reminders actor is spawned with: a due
/// reconciliation reminder of a calendar makes the engine run that user
/// (`wanted`). `engine` is read when a reminder arrives, so the bridge can
/// exist before the engine does (null: nothing to wake yet).
caf::actor spawn_reminder_bridge(caf::actor_system& sys,
                                 std::shared_ptr<std::atomic<engine*>> engine);

} // namespace crmsync::sync
