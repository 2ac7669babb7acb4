#!/usr/bin/env bash
# deploy/run-cluster.sh with CLUSTER_ETCD=1, run for real (issue 15): a
# three-member etcd over TLS with client certificates, three nodes with
# replicated shards, graph-emulator and the front, on free ports with the
# binaries of this build. Checks that it serves: etcd refuses a client
# without a certificate, the nodes keep their membership in etcd, an
# organization created through the front is served by its primary from
# every node, a SIGKILL of that primary (`run-cluster.sh kill`) is followed
# by its follower serving the organization with the acknowledged write,
# `run-cluster.sh restart` brings the node back ready, a second start on
# the same data is refused, and Ctrl-C (SIGTERM) stops every process.
#   tests/deploy/run_cluster_test.sh BIN_DIR
set -euo pipefail
BIN=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
script_pid=""
cleanup() {
  if [ -n "$script_pid" ] && kill -0 "$script_pid" 2>/dev/null; then
    kill -TERM "$script_pid" 2>/dev/null || true
    for _ in $(seq 1200); do kill -0 "$script_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # Whatever the script left (it failed half-way): by its pid files only.
  for f in "$work"/data/run/*.pid; do
    [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- run-cluster.sh" >&2
  tail -n 30 "$work/run.log" >&2 || true
  for f in "$work"/data/logs/*.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}
source tests/support/until_ok.sh
read -r HTTP CLUSTER ETCD_BASE < <(python3 scripts/cluster-ports.py)
export CLUSTER_ETCD=1 CRMSYNC_BIN=$BIN CLUSTER_DATA=$work/data
export FRONT_PORT=$HTTP NODE_PORT_BASE=$HTTP EMULATOR_PORT=$((HTTP + 9))
export CLUSTER_PORT_BASE=$CLUSTER ETCD_PORT_BASE=$ETCD_BASE
F=http://127.0.0.1:$HTTP
node_url() { echo "http://127.0.0.1:$((HTTP + ${1#n}))"; }
ctl=(bash deploy/run-cluster.sh)

echo "== start (etcd e1..e3 on $ETCD_BASE+1.., nodes on $HTTP+1..)"
# A lease of 2 s keeps the failover below short; the script passes its
# arguments to every crmsyncd.
setsid bash deploy/run-cluster.sh --etcd-lease-ttl 2 --log-level warn >"$work/run.log" 2>&1 &
script_pid=$!
started() { grep -q '^crmsync cluster: public URL' "$work/run.log"; }
for _ in $(seq 900); do
  started && break
  kill -0 "$script_pid" 2>/dev/null || fail "run-cluster.sh exited before the cluster served"
  sleep 0.2
done
started || fail "the cluster did not come up within 180 s"
ADMIN=$(cat "$work/data/admin.token")
admin=(-H "Authorization: Bearer $ADMIN")

echo "== etcd speaks TLS and wants a client certificate"
certs=$work/data/etcd-certs
e1=https://127.0.0.1:$((ETCD_BASE + 1))
curl -sf --cacert "$certs/ca.pem" --cert "$certs/client.pem" --key "$certs/client.key" \
  "$e1/health" | grep -q '"health":"true"' || fail "etcd e1 is not healthy over TLS"
if curl -sf --cacert "$certs/ca.pem" -o /dev/null "$e1/health"; then
  fail "etcd answered a client without a certificate"
fi
if curl -sf -o /dev/null "http://127.0.0.1:$((ETCD_BASE + 1))/health"; then
  fail "etcd answered plain http"
fi
members=$(curl -sf --cacert "$certs/ca.pem" --cert "$certs/client.pem" --key "$certs/client.key" \
  -X POST "$e1/v3/cluster/member/list" -d '{}' | jq '.members | length')
[ "$members" = 3 ] || fail "etcd has $members members, not 3"

echo "== the nodes: membership in etcd, every node ready, shards replicated"
for n in n1 n2 n3; do
  curl -sf -o /dev/null "$(node_url $n)/readyz" || fail "$n is not ready"
  view=$(curl -sf "$(node_url $n)/admin/v1/cluster" "${admin[@]}")
  jq -e '.membership == "etcd" and .etcd.registered and (.members | length == 3)
         and (.members | all(.up)) and .replication.factor == 2' <<<"$view" >/dev/null \
    || fail "$n's view of the cluster: $view"
done
# Every one of the 256 shards has a primary and one follower, or two while
# the rebalancer moves a follower to its rendezvous place (the new one is
# added before the old one is dropped: ADR 0008, t15-balance; the owners
# fill in the first followers from the members registered at the time, so
# a node that registered last gets its share of followers over the first
# minutes). Never the primary itself.
"$BIN/crmsyncctl" --node "$F" --token "$ADMIN" --json shards >"$work/shards.json" \
  || fail "crmsyncctl shards failed"
jq -e '(.shards | length) == 256 and (.shards | all(. as $s
       | ($s.followers | length) >= 1 and ($s.followers | length) <= 2
       and ($s.followers | all(. != $s.node))))' \
  "$work/shards.json" >/dev/null \
  || fail "the shard map is not replicated: $(head -c 400 "$work/shards.json")"

echo "== an organization through the front, served by its primary from every node"
org=$(curl -sf -X POST "$F/api/v1/orgs" "${admin[@]}" -H 'Content-Type: application/json' \
  -d '{"name":"Deploy Check","edition":"free","admin":{"email":"boss@deploy.example","name":"Boss"}}') \
  || fail "creating an organization through the front failed"
ORG=$(jq -r .org.id <<<"$org")
TOKEN=$(jq -r .admin.token <<<"$org")
ME=$(jq -r .admin.id <<<"$org")
auth=(-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json')
owner=$(curl -sf "$F/admin/v1/tenants/$ORG" "${admin[@]}" | jq -r .node)
for n in n1 n2 n3; do
  served=$(curl -sf -D - -o /dev/null "$(node_url $n)/api/v1/orgs/$ORG" "${auth[@]}" \
    | sed -n 's/^X-Crmsync-Node: //Ip' | tr -d '\r')
  [ "$served" = "$owner" ] || fail "through $n the organization was served by '$served', not $owner"
done
event() { # TITLE [NODE]: one event written, through NODE's port (default the front)
  local base=$F
  [ $# -gt 1 ] && base=$(node_url "$2")
  curl -sf -X POST "$base/api/v1/orgs/$ORG/users/$ME/events" "${auth[@]}" \
    -d "{\"title\":\"$1\",\"start\":\"2027-01-10T10:00:00Z\",\"end\":\"2027-01-10T11:00:00Z\"}"
}
event before >/dev/null || fail "the first event was not written"

echo "== kill -9 of the primary ($owner): its follower takes over"
"${ctl[@]}" kill "$owner" >/dev/null || fail "run-cluster.sh kill $owner failed"
other=n1
[ "$owner" = n1 ] && other=n2
until_ok 60 event after "$other" || fail "the organization was not served again within 60 s"
now=$(curl -sf "$(node_url $other)/admin/v1/tenants/$ORG" "${admin[@]}" | jq -r .node)
[ "$now" != "$owner" ] || fail "the map still names $owner as the primary"
titles=$(curl -sf "$(node_url $other)/api/v1/orgs/$ORG/users/$ME/events" "${auth[@]}" \
  | jq -r '[.items[].title] | sort | join(",")')
[ "$titles" = "after,before" ] || fail "after the failover the events are '$titles'"
status=$("${ctl[@]}" status)
grep -qx "$owner: down" <<<"$status" || fail "status does not show $owner down: $status"
grep -qx 'e3: up (pid [0-9]*)' <<<"$status" || fail "status does not show etcd's members: $status"

echo "== restart: $owner comes back ready"
"${ctl[@]}" restart "$owner" >/dev/null || fail "run-cluster.sh restart $owner failed"
until_ok 60 curl -sf "$(node_url "$owner")/readyz" || fail "$owner did not become ready again"
event again "$owner" >/dev/null || fail "a write through the restarted $owner failed"

echo "== a second start on the same data is refused"
if bash deploy/run-cluster.sh >"$work/second.log" 2>&1; then
  fail "a second run-cluster.sh on the same data started"
fi
grep -q 'already running' "$work/second.log" || fail "the second start said: $(cat "$work/second.log")"

echo "== SIGTERM stops everything"
pids=$(cat "$work"/data/run/*.pid)
kill -TERM "$script_pid"
# The script gives each node 30 s after SIGTERM before a SIGKILL.
until_ok 150 bash -c "! kill -0 $script_pid" || fail "run-cluster.sh did not stop"
if grep 'did not stop within' "$work/run.log"; then
  echo "(a node needed SIGKILL: a write waiting for its follower can hold the shutdown)"
fi
for p in $pids; do
  kill -0 "$p" 2>/dev/null && fail "process $p is still running after the stop"
done
grep -q '^stopped; data kept' "$work/run.log" || fail "the script did not say it stopped"
echo "PASS"
