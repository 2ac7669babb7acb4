#!/usr/bin/env bash
# Time to move one shard holding USERS users (issue 15): the cluster of
# deploy/run-cluster.sh with CLUSTER_ETCD=1 (three-member etcd over TLS,
# three nodes, --replication-factor 2). One organization gets USERS users
# (POST /api/v1/orgs/{org}/users, CREATE_THREADS at once, default 8);
# then its shard is moved with POST /admin/v1/shards/{n}/move to the node
# that is neither its primary nor its follower (the drain and the
# rebalancer move shards the same way), while a probe writes an event to
# the organization every 20 ms through a third node. Prints the move's
# duration, the writes refused during it and the window without an
# acknowledged write.
#   bench/run-shard-move.sh [USERS]    (default 10000)
# SHARDS (--shards, 256), ACTOR_THREADS (--actor-threads, 8; see
# bench/run-failover.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_build crmsyncd crmsyncctl graph-emulator
users=${1:-10000}
bench_machine
echo "cluster: 3-member etcd (TLS), 3 nodes, --replication-factor 2, --replication-ack 1," \
  "--shards ${SHARDS:-256}, --actor-threads ${ACTOR_THREADS:-8}"
bench_etcd_cluster --shards "${SHARDS:-256}" --actor-threads "${ACTOR_THREADS:-8}" --log-level warn
python3 bench/cluster_bench.py move "$users"
