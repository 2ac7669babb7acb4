// Elastic membership on etcd (t15-ops; ADR 0007): drains and bounded
// rebalancing, and the thread that runs them with the claim sweep.
//
// Who owns and follows a shard is the map in etcd; who *should* is
// rendezvous hashing over the eligible members: this node and the
// connected registered members, minus the drained ones (a key
// PREFIX "drain/ID" in etcd): the owner is the first choice, the followers
// the next `factor` - 1 (t15-balance: followers count too). Every node
// looks only at the shards it owns and takes one step toward that layout
// (plan_step), at most `rate` steps a minute: a follower added (rebuilt
// from a snapshot, ADR 0008) or dropped, the primary role handed over to
// an in-sync follower (no copy), or, without followers (factor 1), the
// shard moved with its rows. A new owner is first made a follower, so a
// move never copies a shard and never leaves it with fewer copies than
// the factor.
// Rendezvous keeps moves minimal: a member joining takes from each node
// only the shards it now weighs highest for, and no shard moves between
// the others; a drained node gives each of its shards to the member that
// weighs highest for it without it. A shard an operator moved by hand
// (POST /admin/v1/shards/{n}/move) is pinned there (PREFIX "pins/N") and
// stays unless its node is drained.
//
// Nothing moves while the node is not ready (a member not yet connected
// would be left out of the rendezvous and the shard moved twice).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "cluster/claim_sweep.hpp"
#include "cluster/etcd.hpp"

namespace crmsync::cluster {

class cluster_upkeep {
public:
  using clock = std::chrono::steady_clock;

  /// What the node knows now: the map (shard by shard; empty while not
  /// read) and the members connected to it (itself included); nullopt
  /// while it is not ready.
  struct view {
    std::vector<std::string> owners;
    std::vector<std::string> connected;
    /// Per shard, as the map names them (empty lists without replication).
    std::vector<std::vector<std::string>> followers;
    /// Of the shards this node is the primary of: the followers that hold
    /// its state (replicator::caught_up).
    std::map<uint32_t, std::set<std::string>> caught_up;
    /// Copies of each shard (--replication-factor; 1: no followers).
    uint32_t factor = 1;
  };

  struct hooks {
    std::function<std::optional<view>()> snapshot;
    /// The node's shard move, a hand-over when `to` is a follower (errors:
    /// the move did not happen).
    std::function<caf::error(uint32_t shard, const std::string& to)> move;
    /// Adds (`add`) or drops a follower of a shard this node owns, in
    /// etcd against the map's revision.
    std::function<caf::error(uint32_t shard, const std::string& id, bool add)>
        change_follower;
  };

  /// A shard's roles: in the map, or the goal.
  struct layout {
    std::string owner;
    std::vector<std::string> followers;
  };

  /// What the rebalancer does next for one shard.
  struct step {
    enum kind_t : uint8_t {
      none,
      move,
      hand_over,
      add_follower,
      drop_follower
    };
    kind_t kind = none;
    std::string node;
  };

  cluster_upkeep(std::shared_ptr<etcd::client> etcd, std::string prefix,
                 std::string self, uint32_t rate_per_minute, hooks h,
                 std::unique_ptr<claim_sweep> sweep);

  /// Rounds every second (after a step, as soon as the rate allows)
  /// until `wait` (given the pause) returns true.
  void run(const std::function<bool(std::chrono::milliseconds)>& wait);

  /// One round: reads the drains and pins, takes at most one step (a
  /// move, a hand-over, a follower added or dropped) when the rate allows,
  /// sweeps claims when due. Returns the shard of the step.
  std::optional<uint32_t> round(clock::time_point now);

  /// The drain mark of a member (POST/DELETE of the admin route).
  caf::error set_drain(const std::string& id, bool on);
  /// Whether a member is marked drained, read from etcd now.
  caf::expected<bool> drained(const std::string& id);
  /// Records a move an operator made (a pin; see above).
  void pin(uint32_t shard, const std::string& to);

  /// The members marked drained at the last round.
  std::set<std::string> draining() const;

  /// The shard's owner among `eligible` by rendezvous, or "" when none.
  static std::string desired_owner(uint32_t shard,
                                   std::vector<std::string> eligible);

  /// The goal for a shard: owner and `factor` - 1 followers in rendezvous
  /// order over `eligible`; `keep_owner` (a pin) stays the owner when it
  /// is eligible. An empty owner when nobody is eligible.
  static layout goal(uint32_t shard, const std::vector<std::string>& eligible,
                     uint32_t factor, const std::string& keep_owner = {});

  /// The next step from `now` (owned by the node that plans) toward
  /// `want`: the owner handed to the goal's owner once it is a caught-up
  /// follower, or made a follower first; missing followers added while the
  /// shard has at most `factor` - 1; one beyond that dropped (the least
  /// wanted: not in the goal, not eligible, lowest rendezvous weight) only
  /// when the followers that stay are all caught up, or it is not. Factor
  /// 1: a move with the rows. Pure (unit-tested).
  static step plan_step(uint32_t shard, const layout& now, const layout& want,
                        const std::vector<std::string>& eligible,
                        const std::set<std::string>& caught_up,
                        uint32_t factor);

private:
  /// Takes one step (logged and counted); false when it failed.
  bool take(uint32_t shard, const step& next, bool leaving);

  std::string drain_key(const std::string& id) const {
    return prefix_ + "drain/" + id;
  }
  std::string pin_key(uint32_t shard) const {
    return prefix_ + "pins/" + std::to_string(shard);
  }

  std::shared_ptr<etcd::client> etcd_;
  std::string prefix_;
  std::string self_;
  std::chrono::milliseconds spacing_;
  hooks hooks_;
  std::unique_ptr<claim_sweep> sweep_;
  clock::time_point next_move_{};
  clock::time_point next_sweep_{};
  mutable std::mutex mtx_;
  std::set<std::string> draining_;
};

} // namespace crmsync::cluster
