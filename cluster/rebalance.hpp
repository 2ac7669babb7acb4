// Elastic membership on etcd (t15-ops; ADR 0007): drains and bounded
// rebalancing, and the thread that runs them with the claim sweep.
//
// Who owns a shard is the map in etcd; who *should* own it is rendezvous
// hashing over the eligible members: this node and the connected
// registered members, minus the drained ones (a key
// PREFIX "drain/ID" in etcd). Every node looks only at the shards it owns
// and moves one whose rendezvous owner is another eligible member there,
// through the node's ordinary shard move, at most `rate` moves a minute.
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
  };

  struct hooks {
    std::function<std::optional<view>()> snapshot;
    /// The node's shard move (errors: the move did not happen).
    std::function<caf::error(uint32_t shard, const std::string& to)> move;
  };

  cluster_upkeep(std::shared_ptr<etcd::client> etcd, std::string prefix,
                 std::string self, uint32_t rate_per_minute, hooks h,
                 std::unique_ptr<claim_sweep> sweep);

  /// Rounds every second until `wait` (given the pause) returns true.
  void run(const std::function<bool(std::chrono::milliseconds)>& wait);

  /// One round: reads the drains and pins, moves at most one shard when
  /// the rate allows, sweeps claims when due. Returns the shard moved.
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

private:
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
