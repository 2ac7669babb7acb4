// The node's calendar sync service (R13-R21): what the rest of the node
// sees of the calendar actors (sync/calendar_sync.hpp) that do the work.
//
// It owns what they share (sync_context), gives the directory the factory
// that activates them (spawn_calendar), and turns the node's events into
// messages for them through the directory: a webhook POST (ingest) is
// stored in the inbox and each user it names is sent `notify_atom`; a
// resync `resync_atom`; start() and adopt() wake only the users with
// something to do and set everyone's reconciliation reminder, so a
// restart is no stampede. It reads, for the admin pages, metrics and
// shard moves, what the actors publish in the context. No threads of its
// own; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "storage/group_commit.hpp"
#include "sync/calendar_sync.hpp"

namespace crmsync::sync {

enum class ingest_result { stored, malformed, too_many, unavailable };

/// What the calendar actors last reported of their users (metrics, the
/// admin page): kept in memory from each run's end, so reading it costs no
/// storage scan.
struct sync_health {
  std::map<std::string, uint64_t> users_by_state;
  uint64_t subscriptions_live = 0;
  uint64_t subscriptions_expiring = 0; ///< within the next hour
};

struct sync_stats {
  uint64_t runs = 0;
  uint64_t notifications_accepted = 0;
  uint64_t notifications_rejected = 0; ///< unknown subscription or clientState
  uint64_t failed_runs = 0;
  /// Entries of the node's in-memory maps of users (memory report):
  /// every known user's state, and the run state of those with one.
  uint64_t users_known = 0;
  uint64_t runs_published = 0;
};

class service {
public:
  service(caf::actor_system& sys, caf::actor directory, storage::db& db,
          graph::client& graph, service_config cfg);
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  /// The directory's factory for calendar actors (actor_env::spawn_calendar).
  caf::actor spawn_calendar(caf::actor_system& sys, const entity_key& key,
                            std::chrono::milliseconds idle_after);

  /// Takes on every user whose sync is on or not yet wound down (after a
  /// restart).
  void start();

  /// Runs end at their next step and start no more; what Graph calls cut
  /// short report is not taken for a failure. Call before
  /// graph::client::shutdown().
  void begin_stop();

  /// Something changed for this user (request, outbox): run soon.
  void wanted(tenant_id org, user_id user);

  /// Stores a Graph change-notification POST body durably in the inbox
  /// (notifications with an unknown subscription or a wrong clientState are
  /// rejected and counted) and tells the calendars it concerns. Says why
  /// not when the body is not a notification collection (400), holds more
  /// than `max_notifications_per_post` items (413), or storage failed (503,
  /// so that Graph retries). `done` is called once: at once when nothing
  /// is to be stored, else once the rows are stored, by the thread that
  /// wrote them (the inbox writes of concurrent POSTs are grouped, see
  /// storage/group_commit.hpp), which may be another request's.
  using ingest_done = std::function<void(ingest_result)>;
  void ingest(std::string_view body, bool lifecycle, ingest_done done);

  size_t max_notifications_per_post() const {
    return ctx_->cfg.max_notifications_per_post;
  }

  sync_stats stats() const;
  sync_health health() const;

  /// Resync: the user's next run reads the whole window again, as after a
  /// 410 from Graph (the delta link is dropped; links keep it free of
  /// duplicates, and a full round finds deletions). Kept until a run with
  /// it gets through.
  void resync(tenant_id org, user_id user);

  /// True while a run of one of the tenant's users is in progress (a shard
  /// move waits for none).
  bool busy(tenant_id org) const;
  /// Takes on the tenant's users whose sync is on or winding down (its
  /// data just arrived here by a shard move), as start() does at boot.
  void adopt(tenant_id org);
  /// The user's timers and run state; reads the stored calendar status for
  /// the subscription's expiry.
  user_timers timers(tenant_id org, user_id user) const;

private:
  /// Takes on the users under `prefix` after a start or a shard move.
  void resume(const std::string& prefix);
  void route(tenant_id org, user_id user, caf::message msg);

  caf::actor directory_;
  std::unique_ptr<graph_port> graph_;
  std::shared_ptr<sync_context> ctx_;
  storage::group_commit inbox_writes_;
};

} // namespace crmsync::sync
