# Shared setup of the Office 365 benchmarks (sourced, not run): a temporary
# directory, graph-emulator seeded with scripts/demo-tenant.json and the app
# "crm" (consented), crmsyncd pointed at it, and Ada's install. After
# bench_setup NODE_ARGS...: $dir, $E (emulator URL), $N (node URL), $admin
# (service admin token), $org, $user, $token and the curl arguments
# "${auth[@]}"; field EXPR reads JSON from stdin. The EXIT trap stops both
# processes and removes $dir. Binaries come from $BENCH_BIN (default
# build/bin); EMULATOR_ARGS are extra graph-emulator arguments, NODE_WRAPPER
# a command crmsyncd runs under (e.g. valgrind; it must exec the node).
# bench_graph_latency gives Graph Microsoft's answer times (after setup).

# Builds TARGETS (in $BENCH_BUILD when set, else the default build/ through
# scripts/build.sh) and exports BENCH_BIN, the directory of the binaries.
# A BENCH_BIN set by the caller is used as it is, nothing built (e.g. to
# compare the binaries of two commits).
bench_build() { # TARGETS...
  if [ -n "${BENCH_BIN:-}" ]; then
    export BENCH_BIN
    return
  fi
  if [ -n "${BENCH_BUILD:-}" ]; then
    CCACHE_BASEDIR="$(pwd)" CCACHE_NOHASHDIR=1 cmake --build "$BENCH_BUILD" -j2 \
      --target "$@" >/dev/null
    BENCH_BIN="$BENCH_BUILD/bin"
  else
    bash scripts/build.sh >/dev/null
    BENCH_BIN=build/bin
  fi
  export BENCH_BIN
}

bench_cleanup() {
  local rc=$?
  # A failed run shows the end of the node's log before it goes.
  if [ "$rc" -ne 0 ] && [ -f "$dir/node.log" ]; then
    echo "== the last lines of the node's log" >&2
    tail -n 40 "$dir/node.log" >&2
  fi
  # RocksDB's own log: writes it slowed or stopped (too many memtables
  # waiting for a flush, too many L0 files, compaction debt).
  if [ "$rc" -ne 0 ] && [ -f "$dir/data/rocksdb/LOG" ]; then
    echo "== RocksDB write stalls: $(grep -c -E 'Stalling writes|Stopping writes' "$dir/data/rocksdb/LOG")" >&2
    # No stall: grep fails, and under set -e that would end the trap
    # here, leaving the node and the emulator running.
    grep -E 'Stalling writes|Stopping writes' "$dir/data/rocksdb/LOG" | tail -n 10 >&2 || true
  fi
  if [ -n "${BENCH_KEEP:-}" ]; then
    echo "kept: $dir (BENCH_KEEP)" >&2
    dir=""
  fi
  for pid in ${node_pid:-} ${emu_pid:-}; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ -z "$dir" ] || rm -rf "$dir"
}

wait_line() { # FILE PATTERN
  for _ in $(seq 1 100); do
    if grep -q "$2" "$1"; then return 0; fi
    sleep 0.1
  done
  echo "no '$2' in $1" >&2
  exit 1
}

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

bench_setup() { # extra crmsyncd arguments
  dir="$(mktemp -d /tmp/crmsync-bench-XXXXXX)"
  trap bench_cleanup EXIT
  # shellcheck disable=SC2086
  "${BENCH_BIN:-build/bin}/graph-emulator" --listen 127.0.0.1:0 ${EMULATOR_ARGS:-} \
    >"$dir/emu.out" 2>"$dir/emu.log" &
  emu_pid=$!
  wait_line "$dir/emu.out" "listening on"
  E="$(sed -n 's/^graph-emulator listening on //p' "$dir/emu.out")"
  curl -sf -X POST "$E/_emulator/tenants" --data @scripts/demo-tenant.json >/dev/null
  curl -sf -X POST "$E/_emulator/apps" \
    -d '{"client_id":"crm","client_secret":"s3cret","tenants":["contoso.example"]}' >/dev/null
  admin="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  node_args=(--data-dir "$dir/data" --log-level warn \
    --admin-token "$admin" --graph-base-url "$E/v1.0" --login-base-url "$E" \
    --client-id crm --client-secret s3cret "$@")
  bench_start_node 127.0.0.1:0
  local installed
  installed=$(scripts/signin.sh "$N/o365/install" ada@contoso.example)
  org=$(echo "$installed" | field 'd["organization"]["id"]')
  user=$(echo "$installed" | field 'd["user"]["id"]')
  token=$(echo "$installed" | field 'd["user"]["token"]')
  auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
}

bench_start_node() { # LISTEN: crmsyncd with bench_setup's arguments
  # shellcheck disable=SC2086 # NODE_WRAPPER: a command and its arguments
  ${NODE_WRAPPER:-} "${BENCH_BIN:-build/bin}/crmsyncd" --listen "$1" "${node_args[@]}" \
    >"$dir/node.out" 2>>"$dir/node.log" &
  node_pid=$!
  wait_line "$dir/node.out" "listening on"
  N="$(sed -n 's/^crmsyncd listening on //p' "$dir/node.out")"
}

# Stops crmsyncd (SIGTERM, waits for its exit) and starts it again on the
# same address and data directory.
bench_restart_node() {
  kill -TERM "$node_pid"
  wait "$node_pid" || true
  bench_start_node "${N#http://}"
}

# The node's Graph requests so far (the sum of crmsync_graph_requests_total).
bench_graph_requests() {
  curl -sf -H "Authorization: Bearer $admin" "$N/metrics" |
    awk '/^crmsync_graph_requests_total/ { n += $NF } END { printf "%d", n }'
}

# Samples the node's Graph requests every second for WATCH seconds and
# prints the first 10 seconds, every tenth, and the total, peak and mean:
# after a restart, a node that runs every user at once shows one burst; one
# that waits for each user's reconciliation reminder stays near users /
# reconcile interval per second.
bench_watch_graph_requests() { # WATCH
  local prev now d total=0 peak=0 s
  prev=$(bench_graph_requests)
  for s in $(seq 1 "$1"); do
    sleep 1
    now=$(bench_graph_requests)
    d=$((now - prev))
    prev=$now
    total=$((total + d))
    if [ "$d" -gt "$peak" ]; then peak=$d; fi
    if [ "$s" -le 10 ] || [ $((s % 10)) -eq 0 ]; then echo "second $s: $d Graph requests"; fi
  done
  echo "first $1 s after the start: $total Graph requests, peak $peak/s," \
    "mean $(echo "scale=1; $total / $1" | bc)/s"
}

# Every Graph answer of graph-emulator comes GRAPH_LATENCY_MS ± GRAPH_JITTER_MS
# late (defaults 100 and 50: Microsoft's calendar answers take ~100-300 ms),
# drawn uniformly from [L-J, L+J]: the emulator's latency_ms L-J plus its
# jitter_ms 2J (a $batch is one answer). Prints what it set.
bench_graph_latency() {
  local lat=${GRAPH_LATENCY_MS:-100} jit=${GRAPH_JITTER_MS:-50}
  if [ "$jit" -gt "$lat" ]; then jit=$lat; fi
  curl -sf -X POST "$E/_emulator/faults" \
    -d "{\"latency_ms\":$((lat - jit)),\"jitter_ms\":$((2 * jit))}" >/dev/null
  echo "Graph latency: $lat ± $jit ms (graph-emulator latency_ms $((lat - jit)), jitter_ms $((2 * jit)))"
}

# A cluster as deploy/run-cluster.sh runs it with CLUSTER_ETCD=1 (a
# three-member etcd over TLS, nodes n1..n3 with replicated shards), on
# free ports, data in $dir/data, with the binaries of $BENCH_BIN. The
# arguments go to every crmsyncd. Exports what the script and
# bench/cluster_bench.py read (CLUSTER_DATA, NODE_PORT_BASE, ...). The
# EXIT trap stops it (SIGTERM to the script, which stops everything).
bench_etcd_cluster() { # CRMSYNCD-ARGS...
  dir="$(mktemp -d /tmp/crmsync-cluster-bench-XXXXXX)"
  trap bench_etcd_cluster_stop EXIT
  local http cluster etcd
  read -r http cluster etcd < <(python3 scripts/cluster-ports.py)
  export CLUSTER_ETCD=1 CRMSYNC_BIN=$BENCH_BIN CLUSTER_DATA=$dir/data
  export FRONT_PORT=$http NODE_PORT_BASE=$http EMULATOR_PORT=$((http + 9))
  export CLUSTER_PORT_BASE=$cluster ETCD_PORT_BASE=$etcd
  setsid bash deploy/run-cluster.sh "$@" >"$dir/run.log" 2>&1 &
  cluster_pid=$!
  for _ in $(seq 900); do
    grep -q '^crmsync cluster: public URL' "$dir/run.log" && return 0
    kill -0 "$cluster_pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "the cluster did not come up:" >&2
  tail -n 20 "$dir/run.log" >&2
  exit 1
}

bench_etcd_cluster_stop() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -d "$dir/data/logs" ]; then
    for f in "$dir"/data/logs/n*.log; do
      echo "== the last lines of $f" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [ -n "${cluster_pid:-}" ]; then
    # The script stops the nodes (SIGKILL after 30 s each), then etcd:
    # its pid files must still be there.
    kill -TERM "$cluster_pid" 2>/dev/null || true
    for _ in $(seq 1200); do kill -0 "$cluster_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -n "${BENCH_KEEP:-}" ]; then
    echo "kept: $dir (BENCH_KEEP)" >&2
  else
    rm -rf "$dir"
  fi
}

bench_machine() {
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
}
