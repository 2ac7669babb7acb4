#!/usr/bin/env bash
# Failover time (issue 15): the cluster of deploy/run-cluster.sh with
# CLUSTER_ETCD=1 (a three-member etcd over TLS, three nodes,
# --replication-factor 2, --replication-ack 1) under a light REST load
# (one event create every LOAD_PERIOD s, default 0.1, to a few
# organizations through a random node). KILLS times: kill -9 the primary
# of one organization's shard (round the three nodes), time until a write
# to that organization through another node is acknowledged (201), start
# the node again and wait until every shard's follower is caught up and no
# move is under way, then until every node is back to its share of
# primaries and followers of the first map (SHARE_DEADLINE, 120 s;
# t15-balance). Prints p50/p99 of the failover time, the resync time, the
# share time, and checks that no acknowledged write of the load was lost.
#   bench/run-failover.sh [KILLS]     (default 20)
# LEASE (--etcd-lease-ttl, default 2 s as in the tests; the product's
# default is 5), SHARDS (--shards, default 32: the returning node takes
# its shards back one per second per node, so 256 make each round about a
# minute), REBALANCE_RATE (600 a minute), ACTOR_THREADS (--actor-threads;
# unset: the product's default, one per core. The runs of 2026-12-07
# morning used 8: a write waiting for its follower then held a scheduler
# thread, and with 2 the second kill of a run got no write through for
# minutes; the acknowledgement has been asynchronous since t15-ack).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_build crmsyncd crmsyncctl graph-emulator
kills=${1:-20}
lease=${LEASE:-2}
shards=${SHARDS:-32}
bench_machine
threads=()
[ -n "${ACTOR_THREADS:-}" ] && threads=(--actor-threads "$ACTOR_THREADS")
echo "cluster: 3-member etcd (TLS), 3 nodes, --replication-factor 2, --replication-ack 1," \
  "--etcd-lease-ttl $lease, --shards $shards, --rebalance-rate ${REBALANCE_RATE:-600}," \
  "--actor-threads ${ACTOR_THREADS:-default (one per core)}"
bench_etcd_cluster --etcd-lease-ttl "$lease" --shards "$shards" \
  --rebalance-rate "${REBALANCE_RATE:-600}" "${threads[@]}" --log-level warn
python3 bench/cluster_bench.py failover "$kills"
