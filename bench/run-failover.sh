#!/usr/bin/env bash
# Failover time (issue 15): the cluster of deploy/run-cluster.sh with
# CLUSTER_ETCD=1 (a three-member etcd over TLS, three nodes,
# --replication-factor 2, --replication-ack 1) under a light REST load
# (one event create every LOAD_PERIOD s, default 0.1, to a few
# organizations through a random node). KILLS times: kill -9 the primary
# of one organization's shard (round the three nodes), time until a write
# to that organization through another node is acknowledged (201), start
# the node again and wait until every shard's follower is caught up and no
# move is under way. Prints p50/p99 of the failover time, the resync time,
# and checks that no acknowledged write of the load was lost.
#   bench/run-failover.sh [KILLS]     (default 20)
# LEASE (--etcd-lease-ttl, default 2 s as in the tests; the product's
# default is 5), SHARDS (--shards, default 32: the returning node takes
# its shards back one per second per node, so 256 make each round about a
# minute), REBALANCE_RATE (600 a minute), ACTOR_THREADS (--actor-threads,
# default 8: with the default of one per core, 2 here, both scheduler
# threads ended up in tenant actors waiting for a follower's
# acknowledgement while the two survivors rebuilt each other's followers,
# and the second kill of a run never got a write through for minutes;
# ADR 0008 names that limit).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_build crmsyncd crmsyncctl graph-emulator
kills=${1:-20}
lease=${LEASE:-2}
shards=${SHARDS:-32}
bench_machine
threads=${ACTOR_THREADS:-8}
echo "cluster: 3-member etcd (TLS), 3 nodes, --replication-factor 2, --replication-ack 1," \
  "--etcd-lease-ttl $lease, --shards $shards, --rebalance-rate ${REBALANCE_RATE:-600}," \
  "--actor-threads $threads"
bench_etcd_cluster --etcd-lease-ttl "$lease" --shards "$shards" \
  --rebalance-rate "${REBALANCE_RATE:-600}" --actor-threads "$threads" --log-level warn
python3 bench/cluster_bench.py failover "$kills"
