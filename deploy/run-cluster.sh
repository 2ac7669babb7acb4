#!/usr/bin/env bash
# A three-node crmsync cluster on loopback, for trying the cluster on one
# machine (see deploy/README.md):
#   - graph-emulator on http://127.0.0.1:8090, seeded like scripts/run.sh
#     (the Office 365 tenant contoso.example and the app crmsync-demo);
#   - crmsync-front (deploy/front/, a round-robin TCP front) on
#     http://127.0.0.1:8080: the cluster's one public URL;
#   - crmsyncd nodes n1, n2, n3: HTTP on 127.0.0.1:8081..8083, cluster
#     traffic on 127.0.0.1:9081..9083, data in ./data-cluster/nN, one admin
#     token for all (generated once into data-cluster/admin.token).
# Builds what is missing, waits until every node sees all three members
# up, prints a walk-through and runs until Ctrl-C, which stops the nodes
# gracefully (SIGTERM), then the front and the emulator.
#
#   deploy/run-cluster.sh              run the cluster in the foreground
#   deploy/run-cluster.sh kill NODE    SIGKILL a node of the running cluster
#   deploy/run-cluster.sh restart NODE start a stopped node again
#   deploy/run-cluster.sh status       which processes are up
#
# With CLUSTER_ETCD=1 the membership, the shard map and the uniqueness
# claims live in a three-member etcd (ADR 0007) started here too: members
# e1..e3, client URLs https://127.0.0.1:ETCD_PORT_BASE+1..3 (default
# 12380..12382), peer URLs on ETCD_PORT_BASE+101..103, TLS on both with
# client certificates (deploy/etcd-certs.sh, made once into
# data-cluster/etcd-certs), data in data-cluster/eN. The nodes then take
# --etcd-endpoints instead of --peers, and `crmsyncctl drain NODE` works.
#
# Environment: CRMSYNC_BUILD_DIR (default build; anything else is
# configured and built with cmake there), CRMSYNC_BIN (a directory that
# already holds crmsyncd, crmsyncctl and graph-emulator: nothing is built
# but the front, into CLUSTER_DATA/bin), CLUSTER_DATA (default
# data-cluster), FRONT_PORT (8080), EMULATOR_PORT (8090), NODE_PORT_BASE
# (8080: node N serves HTTP on BASE+N), CLUSTER_PORT_BASE (9080: node N's
# cluster port is BASE+N). Other arguments go to every crmsyncd (e.g.
# --log-level debug).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${CRMSYNC_BUILD_DIR:-build}
DATA=${CLUSTER_DATA:-data-cluster}
FRONT_PORT=${FRONT_PORT:-8080}
EMULATOR_PORT=${EMULATOR_PORT:-8090}
NODE_PORT_BASE=${NODE_PORT_BASE:-8080}
CLUSTER_PORT_BASE=${CLUSTER_PORT_BASE:-9080}
NODES=(n1 n2 n3)
ETCD=${CLUSTER_ETCD:-0}
ETCD_PORT_BASE=${ETCD_PORT_BASE:-12379}
ETCDS=()
[ "$ETCD" = 1 ] && ETCDS=(e1 e2 e3)
RUN=$DATA/run
LOGS=$DATA/logs
E=http://127.0.0.1:$EMULATOR_PORT
PUBLIC=http://127.0.0.1:$FRONT_PORT

die() {
  echo "run-cluster: $*" >&2
  exit 1
}

# n2 -> 2; anything else is refused.
node_index() {
  local i
  for i in "${!NODES[@]}"; do
    if [ "${NODES[$i]}" = "$1" ]; then
      echo $((i + 1))
      return 0
    fi
  done
  die "no node '$1' (the nodes are ${NODES[*]})"
}

alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# -- commands for a cluster that is already running

case "${1:-}" in
  kill)
    [ $# -eq 2 ] || die "usage: deploy/run-cluster.sh kill NODE"
    node_index "$2" >/dev/null
    alive "$RUN/$2.pid" || die "$2 is not running"
    kill -9 "$(cat "$RUN/$2.pid")"
    echo "$2 killed (SIGKILL)"
    exit 0
    ;;
  restart)
    [ $# -eq 2 ] || die "usage: deploy/run-cluster.sh restart NODE"
    node_index "$2" >/dev/null
    alive "$RUN/supervisor.pid" || die "the cluster is not running (start it with deploy/run-cluster.sh)"
    alive "$RUN/$2.pid" && die "$2 is running; kill it first"
    # The running script starts it, so that Ctrl-C there stops it too.
    touch "$RUN/$2.restart"
    for _ in $(seq 100); do
      [ -f "$RUN/$2.restart" ] || break
      sleep 0.1
    done
    [ -f "$RUN/$2.restart" ] && die "the cluster script did not pick up the request"
    echo "$2 started again (pid $(cat "$RUN/$2.pid")); it serves once its peers see it up"
    exit 0
    ;;
  status)
    # etcd's members when this data directory runs them (CLUSTER_ETCD=1).
    [ -d "$DATA/e1" ] && ETCDS=(e1 e2 e3)
    for p in supervisor emulator front ${ETCDS[@]+"${ETCDS[@]}"} "${NODES[@]}"; do
      if alive "$RUN/$p.pid"; then
        echo "$p: up (pid $(cat "$RUN/$p.pid"))"
      else
        echo "$p: down"
      fi
    done
    exit 0
    ;;
  -h | --help)
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 0
    ;;
esac

# -- the cluster itself

if [ -f "$RUN/supervisor.pid" ] && alive "$RUN/supervisor.pid"; then
  die "a cluster is already running from $DATA (pid $(cat "$RUN/supervisor.pid"))"
fi

# Build what is missing: crmsyncd, graph-emulator, crmsyncctl, the front.
if [ -n "${CRMSYNC_BIN:-}" ]; then
  for b in crmsyncd crmsyncctl graph-emulator; do
    [ -x "$CRMSYNC_BIN/$b" ] || die "CRMSYNC_BIN=$CRMSYNC_BIN holds no $b"
  done
elif [ "$BUILD" = build ]; then
  bash scripts/build.sh
else
  bash scripts/install-deps.sh
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target crmsyncd graph-emulator crmsyncctl
fi
BIN=${CRMSYNC_BIN:-$BUILD/bin}
FRONT=$BUILD/deploy/crmsync-front
[ -n "${CRMSYNC_BIN:-}" ] && FRONT=$DATA/bin/crmsync-front
if [ ! -x "$FRONT" ] || [ deploy/front/crmsync-front.cpp -nt "$FRONT" ]; then
  echo "building $FRONT"
  mkdir -p "$(dirname "$FRONT")"
  # Compiled through ccache when there is one (the tests start this script
  # often; ccache skips a command that also links), then linked.
  $(command -v ccache || true) g++ -std=c++17 -O2 -pthread -c \
    deploy/front/crmsync-front.cpp -o "$FRONT.o"
  g++ -pthread "$FRONT.o" -o "$FRONT"
  rm -f "$FRONT.o"
fi

mkdir -p "$RUN" "$LOGS"
rm -f "$RUN"/*.restart
echo $$ >"$RUN/supervisor.pid"

# One admin token for the whole cluster: every node must accept the same
# one, so it is generated here once (not by each node into its data dir).
if [ ! -s "$DATA/admin.token" ]; then
  (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$DATA/admin.token")
fi
CRMSYNC_ADMIN_TOKEN=$(cat "$DATA/admin.token")
export CRMSYNC_ADMIN_TOKEN

stopping=0
stop_all() {
  [ $stopping -eq 1 ] && return
  stopping=1
  trap - INT TERM
  echo
  echo "stopping: nodes (graceful), then the front and the emulator"
  local n p
  for n in "${NODES[@]}"; do
    if alive "$RUN/$n.pid"; then
      kill -TERM "$(cat "$RUN/$n.pid")" 2>/dev/null || true
    fi
  done
  # A node that has not stopped 30 s after SIGTERM (more than its
  # --shutdown-grace-ms) is killed: Ctrl-C never leaves processes behind.
  local t
  for n in "${NODES[@]}"; do
    if [ -f "$RUN/$n.pid" ]; then
      p=$(cat "$RUN/$n.pid")
      for t in $(seq 300); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$p" 2>/dev/null; then
        echo "$n did not stop within 30 s of SIGTERM: SIGKILL"
        kill -KILL "$p" 2>/dev/null || true
      fi
      wait "$p" 2>/dev/null || true
      rm -f "$RUN/$n.pid"
    fi
  done
  for n in front emulator ${ETCDS[@]+"${ETCDS[@]}"}; do
    if [ -f "$RUN/$n.pid" ]; then
      p=$(cat "$RUN/$n.pid")
      kill -TERM "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
      rm -f "$RUN/$n.pid"
    fi
  done
  rm -f "$RUN/supervisor.pid"
  echo "stopped; data kept in $DATA (logs in $LOGS)"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every child runs in its own session (setsid), so a Ctrl-C in this
# terminal reaches only this script, which then stops them in order.
wait_http() { # URL WHAT
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  die "$2 did not come up (see $LOGS)"
}

# graph-emulator, seeded like scripts/run.sh.
setsid "$BIN/graph-emulator" --listen "127.0.0.1:$EMULATOR_PORT" >>"$LOGS/emulator.log" 2>&1 &
echo $! >"$RUN/emulator.pid"
wait_http "$E/_emulator/state" "graph-emulator on $E"
curl -sf -X POST "$E/_emulator/tenants" --data @scripts/demo-tenant.json >/dev/null
# The emulator forgets everything when it stops; a tenant installed by an
# earlier run (its organization is in the cluster's data) has consented.
consented='[]'
ls -d "$DATA"/n*/rocksdb >/dev/null 2>&1 && consented='["contoso.example"]'
curl -sf -X POST "$E/_emulator/apps" \
  -d '{"client_id":"crmsync-demo","client_secret":"demo-secret","tenants":'"$consented"'}' >/dev/null

# The front: the one public address Microsoft and browsers use.
backends=()
for i in "${!NODES[@]}"; do
  backends+=(--backend "127.0.0.1:$((NODE_PORT_BASE + i + 1))")
done
setsid "$FRONT" --listen "127.0.0.1:$FRONT_PORT" "${backends[@]}" >>"$LOGS/front.log" 2>&1 &
echo $! >"$RUN/front.pid"

# The cluster's mutual TLS: a throwaway CA and a certificate per node,
# made once and kept with the data.
CERTS=$DATA/certs
for n in "${NODES[@]}"; do
  [ -f "$CERTS/$n.pem" ] || bash "$(dirname "$0")/../scripts/cluster-ca.sh" "$CERTS" "$n"
done

# etcd (CLUSTER_ETCD=1): three members over TLS, clients with
# certificates of etcd's CA only.
ETCD_CERTS=$DATA/etcd-certs
etcd_urls=""
if [ "$ETCD" = 1 ]; then
  command -v etcd >/dev/null || die "CLUSTER_ETCD=1 needs etcd (Debian: etcd-server)"
  [ -f "$ETCD_CERTS/client.pem" ] ||
    bash "$(dirname "$0")/etcd-certs.sh" "$ETCD_CERTS" e1=127.0.0.1,localhost \
      e2=127.0.0.1,localhost e3=127.0.0.1,localhost
  initial=""
  for k in 1 2 3; do
    initial+="${initial:+,}e$k=https://127.0.0.1:$((ETCD_PORT_BASE + 100 + k))"
    etcd_urls+="${etcd_urls:+,}https://127.0.0.1:$((ETCD_PORT_BASE + k))"
  done
  for k in 1 2 3; do
    client=https://127.0.0.1:$((ETCD_PORT_BASE + k))
    peer=https://127.0.0.1:$((ETCD_PORT_BASE + 100 + k))
    setsid env -u ETCD_NAME etcd --name "e$k" --data-dir "$DATA/e$k" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$initial" --initial-cluster-token crmsync-run-cluster \
      --cert-file "$ETCD_CERTS/e$k.pem" --key-file "$ETCD_CERTS/e$k.key" \
      --client-cert-auth --trusted-ca-file "$ETCD_CERTS/ca.pem" \
      --peer-cert-file "$ETCD_CERTS/e$k.pem" --peer-key-file "$ETCD_CERTS/e$k.key" \
      --peer-client-cert-auth --peer-trusted-ca-file "$ETCD_CERTS/ca.pem" \
      >>"$LOGS/e$k.log" 2>&1 &
    echo $! >"$RUN/e$k.pid"
  done
  echo "waiting for etcd (e1..e3) to elect a leader"
  healthy=0
  for _ in $(seq 300); do
    for k in 1 2 3; do
      alive "$RUN/e$k.pid" || die "etcd member e$k exited at start (see $LOGS/e$k.log)"
    done
    if curl -sf --cacert "$ETCD_CERTS/ca.pem" --cert "$ETCD_CERTS/client.pem" \
      --key "$ETCD_CERTS/client.key" "https://127.0.0.1:$((ETCD_PORT_BASE + 1))/health" |
      grep -q '"health":"true"'; then
      healthy=1
      break
    fi
    sleep 0.2
  done
  [ $healthy -eq 1 ] || die "etcd did not elect a leader within 60 s (see $LOGS/e1.log)"
fi

extra=("$@")
start_node() { # NAME
  local n=$1 i j peers=""
  i=$(node_index "$n")
  for j in "${!NODES[@]}"; do
    [ $((j + 1)) -eq "$i" ] && continue
    peers+="${peers:+,}${NODES[$j]}=127.0.0.1:$((CLUSTER_PORT_BASE + j + 1))"
  done
  local membership=(--peers "$peers")
  [ "$ETCD" = 1 ] && membership=(--etcd-endpoints "$etcd_urls"
    --etcd-ca-file "$ETCD_CERTS/ca.pem" --etcd-cert-file "$ETCD_CERTS/client.pem"
    --etcd-key-file "$ETCD_CERTS/client.key" --initial-members "${#NODES[@]}")
  mkdir -p "$DATA/$n"
  echo "--- $(date -Is) start" >>"$LOGS/$n.log"
  setsid "$BIN/crmsyncd" \
    --node-id "$n" \
    --listen "127.0.0.1:$((NODE_PORT_BASE + i))" \
    --cluster-listen "127.0.0.1:$((CLUSTER_PORT_BASE + i))" \
    "${membership[@]}" \
    --cluster-ca-file "$CERTS/ca.pem" \
    --cluster-cert "$CERTS/$n.pem" --cluster-key "$CERTS/$n.key" \
    --public-url "$PUBLIC" \
    --data-dir "$DATA/$n" \
    --graph-base-url "$E/v1.0" --login-base-url "$E" \
    --client-id crmsync-demo --client-secret demo-secret \
    ${extra[@]+"${extra[@]}"} >>"$LOGS/$n.log" 2>&1 &
  echo $! >"$RUN/$n.pid"
}

for n in "${NODES[@]}"; do
  start_node "$n"
done

# Ready when every node's view of the membership has all three up, and
# with etcd when every node says so itself (/readyz: registered, the shard
# map read, every member connected).
members_up() { # NODE-INDEX
  curl -sf "http://127.0.0.1:$((NODE_PORT_BASE + $1))/admin/v1/cluster" \
    -H "Authorization: Bearer $CRMSYNC_ADMIN_TOKEN" 2>/dev/null |
    grep -o '"up":true' | wc -l
}
echo "waiting for the three nodes to see each other"
for _ in $(seq 300); do
  all=1
  for i in "${!NODES[@]}"; do
    [ "$(members_up $((i + 1)))" -eq ${#NODES[@]} ] || all=0
    [ "$ETCD" = 1 ] && ! curl -sf -o /dev/null "http://127.0.0.1:$((NODE_PORT_BASE + i + 1))/readyz" && all=0
    alive "$RUN/${NODES[$i]}.pid" || die "${NODES[$i]} exited at start (see $LOGS/${NODES[$i]}.log)"
  done
  [ "$all" -eq 1 ] && break
  sleep 0.2
done
[ "$all" -eq 1 ] || die "the nodes did not all see each other within 60 s (see $LOGS)"
alive "$RUN/front.pid" || die "crmsync-front exited (see $LOGS/front.log)"

# The commands below, as the user types them (with a non-default data dir
# the helper commands need it too).
ctl=deploy/run-cluster.sh
[ "$DATA" = data-cluster ] || ctl="CLUSTER_DATA=$DATA $ctl"

cat <<HELP

crmsync cluster: public URL $PUBLIC (crmsync-front, round robin over
n1..n3 on 127.0.0.1:$((NODE_PORT_BASE + 1))-$((NODE_PORT_BASE + 3))), Office 365 (graph-emulator) on $E.
Logs in $LOGS. Ctrl-C stops everything. In another terminal:

  F=$PUBLIC; ADMIN=\$(cat $DATA/admin.token)
  curl -s \$F/admin/v1/cluster -H "Authorization: Bearer \$ADMIN"     # members, up, shards each
  for i in 1 2 3; do curl -s -D - -o /dev/null \$F/healthz | grep -i x-crmsync-node; done
                                        # the front hands each connection to the next node
  scripts/signin.sh \$F/o365/install ada@contoso.example               # install through the front
  ORG=…; TOKEN=…; ME=…                                                  # org id, Ada's token, her user id
  curl -s \$F/admin/v1/tenants/\$ORG -H "Authorization: Bearer \$ADMIN"   # its shard and owner node
  curl -s -D - -o /dev/null \$F/api/v1/orgs/\$ORG -H "Authorization: Bearer \$TOKEN" | grep -i x-crmsync-node
                                        # whichever node took it, the owner ran it
  curl -s -X POST \$F/api/v1/orgs/\$ORG/users/\$ME/events -H "Authorization: Bearer \$TOKEN" \\
    -H 'Content-Type: application/json' \\
    -d '{"title":"Kick-off","start":"2027-01-10T10:00:00Z","end":"2027-01-10T11:00:00Z"}'
  curl -s -X PUT \$F/api/v1/orgs/\$ORG/users/\$ME/calendar-sync -H "Authorization: Bearer \$TOKEN" \\
    -H 'Content-Type: application/json' -d '{"enabled":true}'         # Graph's notifications come in via \$F
  $BIN/crmsyncctl --node \$F --token \$ADMIN tenants

HELP
if [ "$ETCD" = 1 ]; then
  cat <<HELP
  # etcd (CLUSTER_ETCD=1): e1..e3 at $etcd_urls, TLS with client certificates;
  # every shard has a primary and a follower (--replication-factor 2)
  $BIN/crmsyncctl --node \$F --token \$ADMIN shards   # primary, followers, epoch, lag
  $ctl kill n3          # SIGKILL the owner shown above
  curl -si \$F/api/v1/orgs/\$ORG -H "Authorization: Bearer \$TOKEN"    # 503 node_unavailable, Retry-After: 1,
                        # until n3's lease ends (--etcd-lease-ttl, 5 s): then its follower
                        # takes the shard (epoch + 1) and answers 200, with every acknowledged write
  $ctl restart n3       # back; the shards rendezvous gives it return at --rebalance-rate
  $BIN/crmsyncctl --node \$F --token \$ADMIN drain n3      # moves n3's shards off, shows progress
  $BIN/crmsyncctl --node \$F --token \$ADMIN drain n3 --cancel
  $ctl status
HELP
else
  cat <<HELP
  $ctl kill n3          # SIGKILL the owner shown above
  curl -si \$F/api/v1/orgs/\$ORG -H "Authorization: Bearer \$TOKEN"    # 503 node_unavailable, Retry-After: 1
                        # only the dead node's organizations: the others are still served
  $ctl restart n3       # back: every organization answers again, nothing acknowledged is lost
  $ctl status
HELP
fi
echo


# Supervise: report nodes that exit, start the ones asked for, and give up
# when the front or the emulator is gone.
declare -A reported=()
while true; do
  { sleep 0.5 & wait $!; } 2>/dev/null || true
  for p in front emulator ${ETCDS[@]+"${ETCDS[@]}"}; do
    alive "$RUN/$p.pid" || die "$p exited (see $LOGS/$p.log)"
  done
  for n in "${NODES[@]}"; do
    pid=$(cat "$RUN/$n.pid" 2>/dev/null || true)
    [ -n "$pid" ] || continue
    if ! kill -0 "$pid" 2>/dev/null && [ -z "${reported[$n]:-}" ]; then
      rc=0
      { wait "$pid"; } 2>/dev/null || rc=$?
      how="with status $rc"
      [ $rc -gt 128 ] && how="on signal $((rc - 128))"
      if [ "$ETCD" = 1 ]; then
        echo "$(date +%T) $n exited $how; its shards' followers take them once its lease ends"
      else
        echo "$(date +%T) $n exited $how; its organizations answer 503 until it is back"
      fi
      reported[$n]=1
    fi
    if [ -f "$RUN/$n.restart" ]; then
      if ! kill -0 "$pid" 2>/dev/null; then
        start_node "$n"
        unset "reported[$n]"
        echo "$(date +%T) $n started again (pid $(cat "$RUN/$n.pid"))"
      fi
      rm -f "$RUN/$n.restart"
    fi
  done
done
