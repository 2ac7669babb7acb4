// The sweep of unreleased uniqueness claims (t15-ops; ADR 0007): a claim in
// etcd whose lookup row exists on no node — a node died between taking the
// claim and committing its write, or a release failed while etcd was away
// — would block its address (or Office 365 identity, tenant) for good.
//
// Every node sweeps the claims of the organizations whose shard it owns:
// a claim's value names its owner organization (its first 8 bytes), and
// only that organization's owner can hold the row. A claim whose row is
// missing here (or holds another value) becomes a suspect; one that is
// still a suspect, unchanged in etcd (same mod revision), after the grace
// period is released in a transaction comparing that revision, under the
// database's claim lock, so a claimed write of this node cannot slip in
// between the check and the release. Each release is logged and counted
// (crmsync_cluster_claims_released_total).
//
// run_once() is called from the node's upkeep thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "cluster/etcd.hpp"
#include "protocol/ids.hpp"
#include "storage/db.hpp"

namespace crmsync::cluster {

class claim_sweep {
public:
  using clock = std::chrono::steady_clock;

  /// `owns`: whether this node serves the organization now (owner of its
  /// shard in the map, the shard not moving).
  claim_sweep(std::shared_ptr<etcd::client> etcd, std::string prefix,
              std::chrono::seconds grace, storage::db& db,
              std::function<bool(tenant_id)> owns);

  /// One pass over every claim; how many were released.
  size_t run_once(clock::time_point now);

  /// How often a pass runs: a quarter of the grace, within 1 s .. 60 s.
  std::chrono::milliseconds interval() const;

private:
  struct suspect {
    int64_t mod_revision = 0;
    clock::time_point since;
  };

  std::shared_ptr<etcd::client> etcd_;
  std::string prefix_;
  std::chrono::seconds grace_;
  storage::db& db_;
  std::function<bool(tenant_id)> owns_;
  std::map<std::string, suspect> suspects_;
};

} // namespace crmsync::cluster
