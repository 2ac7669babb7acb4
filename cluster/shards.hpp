// Where a tenant lives in a cluster: tenants map to a fixed number of
// shards by a stable hash of the tenant id, and shards map to nodes by
// rendezvous (highest random weight) hashing over the membership, which
// every node computes identically from the same configuration. A shard
// move writes an override that wins over the computed owner.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "protocol/ids.hpp"

namespace crmsync::cluster {

/// A member of the cluster: its id and cluster (middleman) address.
struct member {
  std::string id;
  std::string host;
  uint16_t port = 0;
};

/// Parses "--peers": "ID=HOST:PORT,ID=HOST:PORT"; false with a sentence.
bool parse_peers(const std::string& text, std::vector<member>& out,
                 std::string& err);

/// A 64-bit mixer (the SplitMix64 finalizer): stable across versions and
/// platforms, so shard numbers never change under stored data.
uint64_t mix64(uint64_t x);

/// FNV-1a of a string, mixed.
uint64_t hash_text(const std::string& s);

/// The shard of a tenant, in [0, shard_count).
uint32_t shard_of(tenant_id t, uint32_t shard_count);

/// The member with the highest weight for `shard` (ties: the smaller id).
/// `members` must not be empty.
const std::string& rendezvous_owner(uint32_t shard,
                                    const std::vector<std::string>& members);

/// The shard -> node map of one membership plus the moves made.
class shard_map {
public:
  shard_map() = default;
  shard_map(std::vector<std::string> members, uint32_t shard_count);
  /// A map whose owners are given, shard by shard (the map kept in etcd);
  /// its members are the owners named.
  static shard_map with_owners(std::vector<std::string> owners);

  uint32_t shard_count() const {
    return shard_count_;
  }
  const std::vector<std::string>& members() const {
    return members_;
  }
  /// The owner of a shard: its override when one is set, else rendezvous.
  const std::string& owner(uint32_t shard) const;
  bool moved(uint32_t shard) const {
    return overrides_.count(shard) > 0;
  }
  /// Records a move; moving a shard back to its computed owner removes the
  /// override.
  void set_owner(uint32_t shard, const std::string& node);
  const std::map<uint32_t, std::string>& overrides() const {
    return overrides_;
  }
  /// Shards owned by `node`.
  uint32_t count_of(const std::string& node) const;

  /// Overrides as text ("shard=node" per line) for the meta column family;
  /// parse ignores entries naming a node outside the membership.
  std::string encode_overrides() const;
  void decode_overrides(const std::string& text);

private:
  std::vector<std::string> members_;
  uint32_t shard_count_ = 1;
  std::vector<std::string> computed_;
  std::map<uint32_t, std::string> overrides_;
};

} // namespace crmsync::cluster
