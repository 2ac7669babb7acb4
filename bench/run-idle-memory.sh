#!/usr/bin/env bash
# Memory of idle synced users (issue 13): USERS Office 365 users (default
# 100,000; one tenant and organization per 100) brought into calendar sync
# by crmsync-loadgen --steady-setup, then left idle. Prints the node's RSS
# (VmRSS of /proc/PID/status) and RSS per user
#   1. right after setup (setup wall time too),
#   2. once the calendars and mailboxes have been passivated
#      (--calendar-idle, default 10 s) and the tenants too (--idle-timeout,
#      default 300 s): the directory (/admin/v1/status) reports no live
#      tenant actor and at most LIVE_SHARE % (default 10) of the users'
#      calendars and mailboxes live. Never none: each synced user's
#      reconciliation reminder wakes its calendar (and mailbox) once per
#      --reconcile-interval (300 s) for about --calendar-idle, so about
#      users x 12 / 300 (4 %) are live at any time,
#   3. after a stop and start of the node on the same data, once idle.
# At each point also the node's own memory report (GET /admin/v1/memory:
# malloc, RocksDB, live actors and in-memory maps) and smaps_rollup.
#   bench/run-idle-memory.sh [USERS]
# Environment: BENCH_BUILD, NODE_ARGS, THREADS, TENANTS as for
# bench/run-steady.sh; WAVE (users whose sync is turned on before the setup
# waits for them to be active, default 5,000); BENCH_BIN (below); SETTLE (seconds to wait for
# passivation, default 600); LIVE_SHARE; IDLE (seconds idle after the
# restart, default 30; the node's Graph requests are sampled every second
# meanwhile, as in bench/run-restart.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-100000}
settle=${SETTLE:-600}
idle=${IDLE:-30}
# shellcheck source=bench/lib.sh
source bench/lib.sh
# BENCH_BIN: a directory of binaries used as they are (no build), e.g. a
# copy of an earlier build to compare with.
if [ -z "${BENCH_BIN:-}" ]; then
  bench_build crmsyncd graph-emulator crmsyncctl crmsync-loadgen
fi

# shellcheck disable=SC2086
bench_setup --signin-burst 1e9 --signin-per-minute 1e9 ${NODE_ARGS:-}

rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$node_pid/status"; }
admin_get() { curl -sf -H "Authorization: Bearer $admin" "$N$1"; }
live() { # KIND: live actors of that kind on the node
  admin_get /admin/v1/status | field "d['actors']['$1']['live']"
}
report() { # WHAT: RSS, RSS per user and the node's memory report
  local kib
  kib=$(rss_kib)
  echo "node RSS $1: $((kib / 1024)) MiB," \
    "$(echo "scale=2; $kib / $users" | bc) KiB per user;" \
    "live actors: tenant $(live tenant), calendar $(live calendar)," \
    "mailbox $(live mailbox)"
  echo "  smaps_rollup: $(awk '/^(Rss|Anonymous|Private_Dirty|Shared_Clean):/ { printf "%s %d MiB, ", $1, $2 / 1024 }' "/proc/$node_pid/smaps_rollup")"
  if admin_get /admin/v1/memory >"$dir/memory.json" 2>/dev/null; then
    python3 - "$dir/memory.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
mib = lambda b: "%.1f MiB" % (b / 1048576)
m, r = d["malloc"], d["rocksdb"]
t = d["trim"]
print("  malloc: in use %s, free in arenas %s, mmapped %s, arenas %d;"
      " trims %d (last released %s in %.1f ms)"
      % (mib(m["in_use_bytes"]), mib(m["free_bytes"]), mib(m["mmap_bytes"]),
         m["arenas"], t["count"], mib(t["last_released_bytes"]),
         t["last_took_us"] / 1000))
print("  rocksdb: memtables %s, block cache %s (pinned %s), table readers %s"
      % (mib(r["memtable_bytes"]), mib(r["block_cache_bytes"]),
         mib(r["block_cache_pinned_bytes"]), mib(r["table_readers_bytes"])))
print("  maps: " + ", ".join("%s %d" % kv for kv in d["entries"].items()))
EOF
  fi
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr);" \
  "crmsync-loadgen and graph-emulator on the same cores"
echo "node:    $N ${NODE_ARGS:-}"
echo "uptime:  $(uptime)"
echo "node RSS before setup: $(($(rss_kib) / 1024)) MiB"
echo
echo "== setup: $users users"
start=$(date +%s.%N)
"$BENCH_BIN/crmsync-loadgen" --node "$N" --emulator "$E" --admin-token "$admin" \
  --steady-setup "$dir/steady.state" --users "$users" \
  --tenants "${TENANTS:-0}" --threads "${THREADS:-16}" --enable-wave "${WAVE:-5000}"
end=$(date +%s.%N)
echo "setup wall time: $(echo "$end - $start" | bc) s"
report "right after setup"

echo
echo "== passivation (up to $settle s)"
start=$(date +%s)
most=$((users * ${LIVE_SHARE:-10} / 100))
until [ "$(live tenant)" -eq 0 ] && [ "$(live calendar)" -le "$most" ] &&
  [ "$(live mailbox)" -le "$most" ]; do
  if [ $(($(date +%s) - start)) -ge "$settle" ]; then
    echo "still live after $settle s"
    break
  fi
  sleep 1
done
echo "passivated after $(($(date +%s) - start)) s"
sleep 5
report "after passivation"

echo
echo "== restart"
start=$(date +%s.%N)
bench_restart_node
until curl -sf "$N/readyz" >/dev/null; do sleep 0.05; done
echo "ready after: $(echo "$(date +%s.%N) - $start" | bc) s (stop and start)"
echo "Graph requests after the restart (one reconciliation per user per" \
  "--reconcile-interval is the steady rate):"
bench_watch_graph_requests "$idle"
report "idle $idle s after the restart"
echo "uptime:  $(uptime)"
