#!/usr/bin/env bash
# The demo as a newcomer walks it (issue 14): scripts/run.sh on free ports
# with the built binaries, then the walk-through it prints, step by step,
# with scripts/demo-env.sh (nothing copied by hand) and scripts/outlook.sh
# (a person in Outlook); then a second run.sh on the busy ports, which must
# say so, exit non-zero and never talk to what listens there.
#   tests/demo/demo_test.sh BIN_DIR
set -euo pipefail
BIN=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."
root=$(pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The node flushes its storage on SIGTERM: let the groups finish.
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 -- "-$p" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
source tests/support/until_ok.sh

node_port=$(free_port)
emu_port=$(free_port)
export CRMSYNC_DEMO_BIN=$BIN CRMSYNC_DEMO_DATA=$work/data
export CRMSYNC_DEMO_NODE=127.0.0.1:$node_port CRMSYNC_DEMO_EMULATOR=127.0.0.1:$emu_port
setsid bash scripts/run.sh >"$work/run.log" 2>&1 &
pids+=($!)
until_ok 60 curl -sf "http://127.0.0.1:$node_port/healthz" || fail "the demo did not start"

echo "== the walk-through printed by run.sh, line by line"
grep -q 'scripts/demo-env.sh' "$work/run.log" || fail "run.sh prints no demo-env.sh walk-through"
# Placeholders never take a name the shell uses.
if grep -Eq '\$\{?(USER|HOME|PATH|PWD|HOSTNAME|SHELL|TERM)\b' "$work/run.log" README.md; then
  fail "a placeholder collides with a shell variable: $(grep -En '\$\{?(USER|HOME|PATH|PWD|HOSTNAME|SHELL|TERM)\b' "$work/run.log" README.md)"
fi
# Run the printed lines (the indented ones) as a newcomer pastes them,
# with the binaries of this build in place of build/bin.
sed -n '/^  /p' "$work/run.log" | sed "s|build/bin/|$BIN/|g" >"$work/walk.sh"
grep -q 'S install ada@' "$work/walk.sh" || fail "no install step in the walk-through"
echo 'declare -p CRMSYNC_ORG CRMSYNC_TOKEN CRMSYNC_ME CRMSYNC_USER_TOKEN CRMSYNC_REQUEST >"$WALK_ENV"' >>"$work/walk.sh"
echo '[ "$USER" = nobody-in-particular ] || { echo "the walk-through replaced \$USER" >&2; exit 1; }' >>"$work/walk.sh"
# A shell of its own with errexit: any failing line fails the walk.
(cd "$root" && HOME=$work USER=nobody-in-particular WALK_ENV=$work/env \
  bash -e "$work/walk.sh" >"$work/walk.log" 2>&1) || fail "the printed walk-through failed"
source "$work/env"
[ -n "$CRMSYNC_ORG" ] && [ -n "$CRMSYNC_TOKEN" ] || fail "install exported nothing"
N=http://127.0.0.1:$node_port
auth=(-H "Authorization: Bearer $CRMSYNC_TOKEN")
users=$(curl -sf "$N/api/v1/orgs/$CRMSYNC_ORG/users" "${auth[@]}")
for who in ada bob carol; do
  jq -e --arg e "$who@contoso.example" '.items | any(.email == $e)' <<<"$users" >/dev/null \
    || fail "$who is not a CRM user after the walk-through: $users"
done
jq -e '.state != "disabled"' <<<"$(curl -sf "$N/api/v1/orgs/$CRMSYNC_ORG/users/me/calendar-sync" "${auth[@]}")" >/dev/null \
  || fail "Ada's sync was not turned on"

echo "== a person in Outlook"
export CRMSYNC_E=http://127.0.0.1:$emu_port
crm_event() { # SUBJECT: the CRM event with that title that came from Office 365
  curl -sf "$N/api/v1/orgs/$CRMSYNC_ORG/users/me/events" "${auth[@]}" \
    | jq -e --arg t "$1" '.items | map(select(.title == $t and .origin == "office365")) | length == 1'
}
until_ok 60 scripts/outlook.sh list ada@contoso.example || fail "Ada's CRM calendar never appeared in Outlook"
id=$(scripts/outlook.sh create ada@contoso.example "Demo lunch" 2027-01-10T12:00:00Z 2027-01-10T13:00:00Z)
[ -n "$id" ] || fail "outlook.sh create printed no id"
until_ok 60 crm_event "Demo lunch" || fail "the Outlook event did not reach the CRM"
scripts/outlook.sh update ada@contoso.example "$id" subject="Long lunch" >/dev/null
until_ok 60 crm_event "Long lunch" || fail "the Outlook change did not reach the CRM"
scripts/outlook.sh delete ada@contoso.example "$id" >/dev/null
gone() { ! crm_event "Long lunch"; }
until_ok 60 gone || fail "the Outlook deletion did not reach the CRM"
# Bad input is refused clearly.
if scripts/outlook.sh create ada@contoso.example X tomorrow 2027-01-10T13:00:00Z 2>"$work/err"; then
  fail "outlook.sh took a bad time"
fi
grep -q 'not a UTC time' "$work/err" || fail "no clear error for a bad time: $(cat "$work/err")"
if scripts/outlook.sh list nobody@contoso.example 2>"$work/err"; then fail "outlook.sh listed an unknown person"; fi

echo "== a second run.sh on the busy ports"
state_before=$(curl -sf "$CRMSYNC_E/_emulator/state")
if bash scripts/run.sh >"$work/second.log" 2>&1; then fail "a second run.sh on busy ports succeeded"; fi
grep -q "port $node_port .*already in use" "$work/second.log" || fail "the second run.sh did not name the busy port"
[ "$(curl -sf "$CRMSYNC_E/_emulator/state")" = "$state_before" ] || fail "the second run.sh changed the first demo's emulator"
curl -sf "$N/healthz" >/dev/null || fail "the first demo died"

echo "== only the emulator port busy, by something else: never talked to"
other_port=$(free_port)
# A listener of our own on a fresh port, recording every connection.
spy_port=$(free_port)
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
open(sys.argv[2], "w").close()
while True:
    c, _ = s.accept()
    open(sys.argv[2], "a").write("knock\n"); c.close()
' "$spy_port" "$work/knocks" &
pids+=($!)
listening() { [ -n "$(ss -Hltn "sport = :$1")" ]; }
until_ok 20 listening "$spy_port" || fail "the spy did not listen"
if CRMSYNC_DEMO_NODE=127.0.0.1:$other_port CRMSYNC_DEMO_EMULATOR=127.0.0.1:$spy_port \
  CRMSYNC_DEMO_DATA=$work/data2 bash scripts/run.sh >"$work/third.log" 2>&1; then
  fail "run.sh started with its emulator port taken"
fi
grep -q "port $spy_port .*already in use" "$work/third.log" || fail "run.sh did not say the emulator port is busy"
[ ! -s "$work/knocks" ] || fail "run.sh talked to the other program on its emulator port"
! listening "$other_port" || fail "run.sh started a node anyway"
echo "PASS"
