#!/usr/bin/env bash
# The cost of replicated shards (issue 15, ADR 0008): event creates/s and
# latency percentiles of a three-node cluster on a one-member etcd, first
# with --replication-factor 1 (no followers), then with 2 (each write is
# answered once the shard's follower holds it, --replication-ack 1), in
# one run on the same machine. crmsync-loadgen creates ORGS organizations
# through node n1 and sends event creates for them to n1 over CONNECTIONS
# keep-alive connections for SECONDS (requests for other nodes' shards are
# forwarded by n1). Each factor gets a fresh etcd and fresh data.
#   bench/run-replication.sh [CONNECTIONS] [SECONDS] [ORGS]
# Env: FACTORS (default "1 2"), ACK (default 1), NODE_ARGS (more crmsyncd
# arguments, e.g. "--actor-threads 1"), BENCH_BIN / BENCH_BUILD
# (bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_build crmsyncd crmsync-loadgen
connections=${1:-24}
seconds=${2:-10}
orgs=${3:-12}
factors=${FACTORS:-1 2}
ack=${ACK:-1}
etcd_bin=$(command -v etcd || echo /usr/bin/etcd)

dir="$(mktemp -d /tmp/crmsync-replication-XXXXXX)"
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  stop_all
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
admin="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
bash scripts/cluster-ca.sh "$dir/certs" n1 n2 n3

run_factor() { # FACTOR
  local factor=$1 run="$dir/f$1"
  mkdir -p "$run"
  local client peer
  client=$(free_port)
  peer=$(free_port)
  "$etcd_bin" --name bench --data-dir "$run/etcd" \
    --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" >"$run/etcd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$client/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  declare -a http
  for i in 1 2 3; do http[$i]=$(free_port); done
  for i in 1 2 3; do
    "$BENCH_BIN/crmsyncd" --listen "127.0.0.1:${http[$i]}" \
      --data-dir "$run/n$i" --admin-token "$admin" --log-level warn \
      --node-id "n$i" --cluster-listen 127.0.0.1:0 \
      --etcd-endpoints "http://127.0.0.1:$client" --initial-members 3 \
      --replication-factor "$factor" --replication-ack "$ack" \
      --cluster-ca-file "$dir/certs/ca.pem" \
      --cluster-cert "$dir/certs/n$i.pem" --cluster-key "$dir/certs/n$i.key" \
      --public-url "http://127.0.0.1:${http[1]}" ${NODE_ARGS:-} \
      >"$run/n$i.out" 2>"$run/n$i.log" &
    pids+=($!)
  done
  local ready=0
  for _ in $(seq 1 600); do
    ready=0
    for i in 1 2 3; do
      curl -sf "http://127.0.0.1:${http[$i]}/readyz" >/dev/null 2>&1 \
        && ready=$((ready + 1))
    done
    [ "$ready" = 3 ] && break
    sleep 0.1
  done
  [ "$ready" = 3 ] || { echo "the cluster did not get ready" >&2; tail -5 "$run"/n*.log >&2; exit 1; }
  echo "== replication factor $factor (ack $ack)"
  "$BENCH_BIN/crmsync-loadgen" --node "http://127.0.0.1:${http[1]}" \
    --admin-token "$admin" --connections "$connections" --duration "$seconds" \
    --orgs "$orgs" || [ $? -eq 1 ]
  # Writes still acknowledged at the end: every follower caught up.
  curl -sf -H "Authorization: Bearer $admin" \
    "http://127.0.0.1:${http[1]}/admin/v1/cluster" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin).get("replication",{}); print("replication on n1: " + json.dumps(r))' || true
  stop_all
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
echo "cluster: one etcd member and 3 nodes on loopback, load generator on the same cores"
for f in $factors; do run_factor "$f"; done
