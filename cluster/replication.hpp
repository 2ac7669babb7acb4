// Replicated shards (ADR 0008): this node's side as a shard's primary and
// as its follower. t15-repl.
//
// As primary: every write storage::db commits (write_hook) is split by the
// shards of its rows; each shard's part gets the shard's next sequence
// number, stored with the write (meta row "repl/shard/N" = epoch and
// sequence, in the same RocksDB batch), and goes to the shard's followers
// in commit order, by one event-based sender actor per follower node, over
// the cluster transport (no thread waits for a follower). A write is
// acknowledged once the required followers (--replication-ack: 0, 1 or
// all) hold it, or fails with 503 replication_timeout: an actor's writes
// are collected (storage::ack_scope) and answered through a response
// promise that the replicator's acknowledger actor settles (t15-ack). A
// follower that is new, behind the batches kept, or of another epoch is
// rebuilt from a snapshot of the shard's rows (a RocksDB snapshot taken
// under the commit lock, so it is exactly the shard at one sequence).
//
// As follower: batches are applied in order (a gap is reported, a batch
// of an epoch older than one this node knows is refused), each with the
// shard's sequence row, so what a follower holds is durable and known.
//
// Fencing: a shard's epoch (in the map in etcd) goes up with every change
// of its owner; a node that learns it no longer owns a shard refuses its
// own writes of that shard, and followers refuse batches of an old epoch.
// Failover (coordinate()): when a shard's owner is no longer registered,
// its follower holding the most takes it in etcd (compare on the map's
// revision), with the next epoch.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "cluster/shard_roles.hpp"
#include "protocol/replication.hpp"
#include "storage/db.hpp"
#include "storage/write_hook.hpp"

namespace crmsync::json {
class writer;
}

namespace crmsync::cluster {

class etcd_membership;

enum class ack_mode { none, one, all };

/// "0", "1" or "all"; false otherwise.
bool parse_ack_mode(const std::string& text, ack_mode& out);
const char* ack_mode_name(ack_mode m);

struct replication_config {
  /// Copies of each shard, the primary's included (1: no followers).
  uint32_t factor = 2;
  ack_mode ack = ack_mode::one;
  /// How long a write waits for its followers before 503.
  std::chrono::milliseconds ack_timeout{std::chrono::seconds(5)};
  /// Batches kept per shard for a follower that is behind (beyond them it
  /// gets a snapshot).
  size_t tail_limit = 20000;
};

/// Marks the actor system's threads (storage::mark_scheduler_thread):
/// they never wait for followers. t15-ack.
void mark_actor_threads(caf::actor_system_config& cfg);

/// Whether rows of this column family are replicated with their shard
/// (not the node's own bookkeeping, sign-in sessions or its timers).
bool replicated_column(storage::column c);

/// What a node holds of a shard: the epoch and sequence of its last
/// applied batch, or that a snapshot is being applied.
struct held_state {
  int64_t epoch = 0;
  uint64_t seq = 0;
  bool rebuilding = false;
  bool present = false; ///< a sequence row exists
};
std::string encode_held(const held_state& h);
held_state decode_held(std::string_view text);

class replicator : public storage::write_hook,
                   public std::enable_shared_from_this<replicator> {
public:
  using peer_fn = std::function<caf::actor(const std::string&)>;

  replicator(caf::actor_system& sys, storage::db& db, std::string self,
             uint32_t shard_count, replication_config cfg, peer_fn peer);
  ~replicator() override;

  /// Stops the sender actors and answers the writes still waiting (503
  /// node_unavailable); before the actor system goes.
  void stop();

  const replication_config& config() const {
    return cfg_;
  }

  /// Takes the roles of a map read from etcd.
  void set_roles(const map_record& m);

  // -- storage::write_hook
  caf::error prepare(const storage::write_batch& batch,
                     storage::write_batch& extra,
                     std::shared_ptr<void>& token) override;
  void committed(const std::shared_ptr<void>& token, bool ok) override;
  caf::error await(const std::shared_ptr<void>& token) override;
  storage::ack_ticket
  defer(const std::vector<std::shared_ptr<void>>& tokens) override;

  // -- as follower (the endpoint actor; `sender` is a connected member)
  repl_results apply_push(const std::string& sender, repl_push& p);
  repl_result apply_snapshot(const std::string& sender, repl_snapshot& s);
  repl_results status(const repl_status_ask& ask);

  /// On the coordinator thread after each round with etcd: failover of
  /// shards whose owner is not `live`, followers of this node's shards
  /// repaired, copies of shards this node no longer holds a role in
  /// removed.
  void coordinate(etcd_membership& membership,
                  const std::set<std::string>& live);

  held_state held(uint32_t shard);

  // -- hand-overs and the rebalancer (t15-balance)
  /// The map's roles as this node took them last (empty before).
  map_record roles() const;
  /// The followers of a shard this node is the primary of that hold its
  /// state and are only shipped its tail (not new, not being rebuilt).
  std::set<std::string> caught_up(uint32_t shard) const;
  /// Refuses every write of the shard here (503 node_unavailable) until
  /// thaw(): a hand-over's pause, so the target can hold everything.
  void freeze(uint32_t shard);
  void thaw(uint32_t shard);
  /// Waits (a condition variable: not on a thread of the actor system)
  /// until `follower` holds every write of the shard this node committed.
  /// Errors: not this node's shard, not a follower, or not in time.
  caf::error await_in_sync(uint32_t shard, const std::string& follower,
                           std::chrono::steady_clock::time_point deadline);

  /// The shard's replication fields for /admin/v1/shards.
  void describe_shard(json::writer& w, uint32_t shard);
  /// The node's replication summary for /admin/v1/cluster.
  void describe(json::writer& w);

private:
  struct progress {
    uint64_t acked = 0;
    bool known = false; ///< acked is what the follower said it holds
    bool snapshot = false;
  };
  struct primary_state {
    int64_t epoch = 0;
    uint64_t next_seq = 1;
    /// What this node held when its epoch began (base_epoch 0: nothing
    /// usable): followers holding exactly that need no snapshot.
    int64_t base_epoch = 0;
    uint64_t base_seq = 0;
    std::deque<repl_entry> tail;
    std::map<std::string, progress> followers;
  };
  struct pending;
  /// What a sender actor does next for its follower.
  struct plan {
    repl_push push;
    std::vector<uint32_t> snapshots;
    std::vector<uint32_t> unknown;
    bool empty() const {
      return push.entries.empty() && snapshots.empty() && unknown.empty();
    }
  };
  struct snapshot_cursor;
  struct snapshot_job;
  friend struct repl_actors;
  /// Drops the batches every follower holds.
  static void trim(primary_state& st); // under mtx_
  /// Whether a write's parts are acknowledged (none: not yet; else the
  /// answer: caf::none or the error). `expired`: the time is up.
  std::optional<caf::error> settled(const pending& p, bool expired); // mtx_
  /// Settles the wait `id` of defer(): none while it still waits.
  std::optional<caf::error> settle_wait(uint64_t id, bool expired);
  /// How long the wait `id` has left.
  std::chrono::milliseconds wait_left(uint64_t id);
  /// Wakes the acknowledger (followers confirmed, a shard was lost).
  void acks_changed(); // under mtx_
  /// Wakes the sender actors (new batches, new roles).
  void work_changed(); // under mtx_
  plan plan_for(const std::string& peer);
  /// Takes followers' answers about what they hold (of a push or of a
  /// status question: one rule for both).
  void absorb(const std::string& peer, const repl_results& got);
  /// Starts a shard's snapshot (false: not this node's shard any more).
  bool begin_snapshot(uint32_t shard, snapshot_job& job);
  /// The next part of rows of a snapshot (empty: all sent).
  caf::error snapshot_rows(snapshot_job& job, std::vector<repl_row>& rows);
  /// The follower holds the whole snapshot.
  void snapshot_held(const std::string& peer, const snapshot_job& job);

  bool is_follower(uint32_t shard) const; // under mtx_
  caf::error
  shard_rows_of(uint32_t shard, const storage::read_view* at,
                const std::function<void(storage::column, std::string_view,
                                         std::string_view)>& fn);
  /// shard_rows_of from a cursor, until `fn` says stop (false).
  caf::error
  shard_rows_from(uint32_t shard, const storage::read_view* at,
                  snapshot_cursor& cur,
                  const std::function<bool(storage::column, std::string_view,
                                           std::string_view)>& fn);
  bool row_in_shard(const repl_row& r, uint32_t shard) const;
  void ensure_sender(const std::string& peer); // under mtx_
  caf::actor acknowledger();                   // under mtx_
  /// Removes this node's copy of a shard it has no role in.
  void discard(uint32_t shard);
  void fence(uint32_t shard, const std::string& why); // under mtx_
  caf::error write_held(uint32_t shard, const held_state& h,
                        storage::write_batch& b);

  caf::actor_system& sys_;
  storage::db& db_;
  std::string self_;
  uint32_t shard_count_;
  replication_config cfg_;
  peer_fn peer_;

  mutable std::mutex mtx_;
  /// Acknowledgements, lost shards: for await() on threads outside the
  /// actor system.
  std::condition_variable ack_cv_;
  bool stopping_ = false;
  bool roles_known_ = false;
  map_record roles_;
  std::map<uint32_t, primary_state> primary_;
  std::set<uint32_t> fenced_;
  std::set<uint32_t> frozen_; ///< in a hand-over (freeze())
  std::vector<held_state> held_;
  std::vector<bool> held_loaded_;
  struct sender_ref {
    caf::actor actor;
    /// A kick is on its way (one at a time, however many writes).
    std::shared_ptr<std::atomic<bool>> kicked;
  };
  std::map<std::string, sender_ref> senders_;
  caf::actor acker_;
  std::atomic<bool> acks_kicked_{false};
  std::map<uint64_t, std::shared_ptr<pending>> waits_;
  uint64_t next_wait_ = 1;
};

} // namespace crmsync::cluster
