// The shard map as etcd stores it with replication (ADR 0008): per shard
// its primary (owner), its followers and the fencing epoch of its
// ownership. A map written before replication (owners only) reads as
// followers none and epoch 0. Pure functions: the changes a primary
// (followers repaired) and a follower (failover) write, compared on the
// map's revision by their callers. t15-repl.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace crmsync::cluster {

struct map_record {
  std::vector<std::string> owners;
  /// Per shard; empty lists when the map has none (older format).
  std::vector<std::vector<std::string>> followers;
  /// Per shard; 0 when the map has none (older format).
  std::vector<int64_t> epochs;

  uint32_t shard_count() const {
    return static_cast<uint32_t>(owners.size());
  }
  /// Fills followers and epochs to the shard count (an older map).
  void complete();
};

std::string encode_map_record(const map_record& m);
/// False when `text` is not a map (owners missing or empty, followers or
/// epochs of another length).
bool decode_map_record(const std::string& text, map_record& out);

/// Every member in the order of its rendezvous weight for `shard`, the
/// highest first (ties: the smaller id): the owner, then the followers.
std::vector<std::string>
rendezvous_order(uint32_t shard, const std::vector<std::string>& members);

/// The first map: owners and followers by rendezvous over `members`,
/// `factor` - 1 followers per shard, epoch 1.
map_record initial_map(const std::vector<std::string>& members,
                       uint32_t shard_count, uint32_t factor);

/// Drops followers that are not `live` (or are the owner) and fills the
/// followers of the shards `self` owns up to `factor` - 1 from the live
/// members in rendezvous order. Keeps one follower beyond that (at most
/// `factor`): the rebalancer adds a follower before it drops one, so a
/// shard never has fewer copies than the factor while it moves
/// (t15-balance). True when something changed.
bool repair_followers(map_record& m, const std::string& self,
                      const std::set<std::string>& live, uint32_t factor);

/// Makes `self` the owner of `shard` (a failover or a move): the epoch
/// goes up by one, `self` leaves the followers, the old owner is not kept
/// as a follower.
void take_ownership(map_record& m, uint32_t shard, const std::string& self);

/// A hand-over (t15-balance): `to`, a follower of `shard`, becomes its
/// owner with the next epoch, and the old owner takes its place among the
/// followers. False (nothing changed) when `to` is no follower.
bool hand_over(map_record& m, uint32_t shard, const std::string& to);

} // namespace crmsync::cluster
