#!/usr/bin/env bash
# Cost of forwarding in a cluster (issue 6): three crmsyncd nodes on
# loopback form a cluster; crmsync-loadgen creates ORGS organizations
# through node n1 (each lands on the shard owner its id picks) and sends
# event creates for all of them to n1 only, over CONNECTIONS keep-alive
# connections for SECONDS. Requests for n1's own organizations are served
# there; the others are forwarded whole to their owner over CAF's
# middleman and the answer comes back through n1. The report splits rate
# and latency by the node that served each request (X-Crmsync-Node), so
# owner and forwarded requests are compared in the same run.
#   bench/run-forwarding.sh [CONNECTIONS] [SECONDS] [ORGS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
connections=${1:-24}
seconds=${2:-10}
orgs=${3:-12}

dir="$(mktemp -d /tmp/crmsync-forwarding-XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
admin="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
declare -a http cl
for i in 1 2 3; do
  http[$i]=$(free_port)
  cl[$i]=$(free_port)
done
for i in 1 2 3; do
  peers=""
  for j in 1 2 3; do
    [ "$j" = "$i" ] && continue
    peers="$peers${peers:+,}n$j=127.0.0.1:${cl[$j]}"
  done
  build/bin/crmsyncd --listen "127.0.0.1:${http[$i]}" --data-dir "$dir/n$i" \
    --admin-token "$admin" --log-level warn --node-id "n$i" \
    --cluster-listen "127.0.0.1:${cl[$i]}" --peers "$peers" \
    --public-url "http://127.0.0.1:${http[1]}" \
    >"$dir/n$i.out" 2>"$dir/n$i.log" &
  pids+=($!)
done
# Until every node sees the other two.
for _ in $(seq 1 200); do
  up=0
  for i in 1 2 3; do
    n=$(curl -sf -H "Authorization: Bearer $admin" \
      "http://127.0.0.1:${http[$i]}/admin/v1/cluster" 2>/dev/null \
      | python3 -c 'import json,sys; print(sum(m["up"] for m in json.load(sys.stdin)["members"]))' \
      2>/dev/null || echo 0)
    [ "$n" = 3 ] && up=$((up + 1))
  done
  [ "$up" = 3 ] && break
  sleep 0.1
done
[ "$up" = 3 ] || { echo "the cluster did not form" >&2; tail -5 "$dir"/n*.log >&2; exit 1; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
echo "cluster: 3 nodes on loopback (n1 http ${http[1]}), load generator on the same cores"
build/bin/crmsync-loadgen --node "http://127.0.0.1:${http[1]}" \
  --admin-token "$admin" --connections "$connections" --duration "$seconds" \
  --orgs "$orgs" --by-node || [ $? -eq 1 ]
echo "forwarded (crmsync_forwarded_requests_total on n1):"
curl -sf -H "Authorization: Bearer $admin" "http://127.0.0.1:${http[1]}/metrics" | grep '^crmsync_forwarded_requests_total' || true
echo "organizations by owner (each has $((connections / orgs)) connections):"
curl -sf -H "Authorization: Bearer $admin" \
  "http://127.0.0.1:${http[1]}/admin/v1/tenants?limit=1000" \
  | python3 -c 'import collections,json,sys; c=collections.Counter(i["node"] for i in json.load(sys.stdin)["items"]); print("  " + ", ".join(f"{k}: {v}" for k,v in sorted(c.items())))'
