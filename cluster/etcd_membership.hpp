// This node's side of the cluster's membership and shard map in etcd
// (ADR 0007): it registers the node under a lease it keeps alive, reads
// the registered members and the versioned shard map every poll, writes
// the first map once enough members registered, and writes a shard move's
// new map version. What it reads goes to the node through callbacks; it
// knows nothing of connections or requests.
//
// run() is the coordinator thread's loop; write_move() is called from a
// shard move's thread; the flags are read from anywhere.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/error.hpp>

#include "cluster/etcd.hpp"
#include "cluster/shard_roles.hpp"
#include "cluster/shards.hpp"

namespace crmsync::cluster {

class etcd_membership {
public:
  struct settings {
    std::string node_id;
    /// Every key of this cluster in etcd starts with it.
    std::string prefix = "/crmsync/";
    std::chrono::seconds lease_ttl{5};
    uint32_t initial_members = 1;
    uint32_t shard_count = 256;
    /// Copies of each shard in the first map (owner included). t15-repl.
    uint32_t replication_factor = 1;
  };

  /// A registered member other than this node, with its HTTP URL.
  struct registered_member {
    member m;
    std::string http_url;
  };

  struct callbacks {
    /// The members registered now (this node left out), every round.
    std::function<void(std::vector<registered_member>)> members;
    /// The map read, shard by shard, with its etcd revision, every round.
    std::function<void(map_record, int64_t)> map;
    /// After every round that reached etcd (failover, repairs). t15-repl.
    std::function<void()> after_round;
    /// Registered again after the lease lapsed (paused, or away from etcd
    /// longer than the lease): the others dropped this node meanwhile.
    std::function<void()> rejoined;
  };

  etcd_membership(std::shared_ptr<etcd::client> etcd, settings s, callbacks cb);

  /// Registers with `cluster_address` and `http_url`, then one round per
  /// `poll` until `wait` (given the poll) returns true; revokes the lease
  /// on the way out, so the others drop this node at once.
  void run(const std::string& cluster_address, const std::string& http_url,
           std::chrono::milliseconds poll,
           const std::function<bool(std::chrono::milliseconds)>& wait);

  /// A move's switch: the map with `shard` on `to`, written only while
  /// this node still owns it there, against the map's revision (another
  /// shard's move in between makes it read and try again).
  caf::error write_move(uint32_t shard, const std::string& to);
  /// A hand-over's switch (t15-balance): `to`, a follower of `shard`,
  /// owns it with the next epoch and this node follows in its place;
  /// written, like a move, only while this node owns the shard there.
  caf::error write_hand_over(uint32_t shard, const std::string& to);
  /// The rebalancer's follower change of a shard this node owns: `id`
  /// added (`add`) or dropped; the epoch stays.
  caf::error change_follower(uint32_t shard, const std::string& id, bool add);

  /// Reads the map, lets `change` edit it (false: nothing to write) and
  /// writes it back compared on the revision read, again while another
  /// write came in between. The map written goes to the map callback
  /// with the revision etcd gave it, before this returns: it is the map
  /// at that revision, so this node learns its own change from the map
  /// like any other (the mover of a shard stops owning it here). The new
  /// revision (0: nothing written). t15-repl.
  caf::expected<int64_t>
  update_map(const std::function<caf::error(map_record&, bool&)>& change);
  /// Reads the map now and hands it to the map callback (a node told that
  /// the map changed, which must not wait for the next poll); false when
  /// it could not be read.
  bool read_map_now();

  /// This node's registration is in etcd under a live lease.
  bool registered() const {
    return registered_;
  }
  /// The last round with etcd went through.
  bool reachable() const {
    return reachable_;
  }
  /// This node's lease is certainly live now: granted or kept alive less
  /// than its TTL ago, timed from before the request went out (so never
  /// later than etcd's own expiry). When it cannot say so, the others may
  /// have taken its shards already: it must not answer from what it holds
  /// (a node paused past its lease would serve stale reads until its next
  /// round read the new map). t15-jepsen.
  bool lease_live() const {
    return std::chrono::steady_clock::now().time_since_epoch().count()
           < live_until_.load();
  }
  const std::string& prefix() const {
    return settings_.prefix;
  }

  /// The stored map's text, and back (false: it does not parse).
  static std::string encode_map(const std::vector<std::string>& owners);
  static bool decode_map(const std::string& text,
                         std::vector<std::string>& owners);
  std::string map_key() const;

private:
  /// update_map for a change of a shard this node owns in the map read
  /// (errors: it does not, or `change` refused).
  caf::error
  change_own_shard(uint32_t shard,
                   const std::function<caf::error(map_record&)>& change);
  std::string member_key(const std::string& id) const;
  bool register_self();
  void round();
  void create_map(const std::vector<registered_member>& others);

  std::shared_ptr<etcd::client> etcd_;
  settings settings_;
  callbacks cb_;
  std::string registration_;
  int64_t lease_ = 0; ///< the run thread's
  std::chrono::steady_clock::time_point last_keep_;
  std::atomic<bool> registered_{false};
  std::atomic<bool> reachable_{false};
  /// Until when (steady_clock ticks) the lease is certainly live.
  std::atomic<std::chrono::steady_clock::rep> live_until_{0};
  bool lapsed_ = false; ///< the run thread's
};

} // namespace crmsync::cluster
