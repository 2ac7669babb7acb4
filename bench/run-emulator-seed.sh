#!/usr/bin/env bash
# graph-emulator seeding at scale: starts an emulator on an ephemeral port and
# seeds TENANTS tenants of USERS users each (as crmsync-loadgen does), one
# POST /_emulator/tenants per tenant over one keep-alive connection. Prints
# the seconds the seeding took.
#   bench/run-emulator-seed.sh [TENANTS] [USERS] [EMULATOR]
set -euo pipefail
cd "$(dirname "$0")/.."
tenants="${1:-300}"
users="${2:-100}"
emulator="${3:-build/bin/graph-emulator}"
if [ -z "${3:-}" ]; then bash scripts/build.sh >/dev/null; fi
[ -x "$emulator" ] || { echo "no emulator binary at $emulator" >&2; exit 2; }
out="$(mktemp)"
bodies="$(mktemp -d)"
"$emulator" --listen 127.0.0.1:0 >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$out" "$bodies"' EXIT
for _ in $(seq 1 100); do grep -q listening "$out" && break; sleep 0.1; done
base="$(sed -n 's/^graph-emulator listening on //p' "$out")"
[ -n "$base" ] || { echo "graph-emulator did not start:" >&2; cat "$out" >&2; exit 1; }
# One request body per file, made before the clock starts; curl's --next
# keeps one connection for every request of one invocation.
args=()
for ((t = 0; t < tenants; t++)); do
  {
    printf '{"domain":"t%d.example","users":[' "$t"
    for ((u = 0; u < users; u++)); do
      [ "$u" -gt 0 ] && printf ','
      printf '{"userPrincipalName":"u%d@t%d.example"}' "$u" "$t"
    done
    printf ']}'
  } >"$bodies/$t.json"
  args+=(-s -o /dev/null -w '%{http_code}\n' -X POST -d "@$bodies/$t.json" "$base/_emulator/tenants" --next)
done
start=$(date +%s.%N)
codes="$(curl "${args[@]}" -s -o /dev/null "$base/_emulator/state" | sort | uniq -c)"
end=$(date +%s.%N)
echo "machine: $(nproc) cores, $(uname -sr)"
echo "answers: $(echo "$codes" | tr '\n' ' ')"
echo "seeded $tenants tenants x $users users in $(awk "BEGIN{print $end - $start}") s"
