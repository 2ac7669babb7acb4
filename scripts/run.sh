#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo on embedded defaults:
# graph-emulator on http://127.0.0.1:8090 standing in for Microsoft Graph,
# seeded with the Office 365 tenant contoso.example (scripts/demo-tenant.json:
# an admin and a dozen users, two without mailboxes) and the app
# "crmsync-demo", and one crmsyncd node on http://127.0.0.1:8080 pointed at
# it, data in ./data (the admin token is generated into data/admin.token).
# Extra arguments go to crmsyncd. Ctrl-C stops both.
#
# Both ports must be free: when one is taken (another demo, another program)
# run.sh says which and exits 2 before starting anything, and it only talks
# to the emulator it started (the process listening on the port must be
# its own child). The environment may move the demo (the tests do):
# CRMSYNC_DEMO_NODE and CRMSYNC_DEMO_EMULATOR (HOST:PORT), CRMSYNC_DEMO_DATA
# (the data directory) and CRMSYNC_DEMO_BIN (built binaries; no build then).
set -euo pipefail
cd "$(dirname "$0")/.."
NODE=${CRMSYNC_DEMO_NODE:-127.0.0.1:8080}
EMULATOR=${CRMSYNC_DEMO_EMULATOR:-127.0.0.1:8090}
DATA=${CRMSYNC_DEMO_DATA:-data}
BIN=${CRMSYNC_DEMO_BIN:-}

# Who listens on TCP PORT (ss's users:(...) field), without connecting:
# knocking would talk to whatever is there.
listener() { ss -Hltnp "sport = :$1" 2>/dev/null; }
busy=0
for hostport in "$NODE" "$EMULATOR"; do
  port=${hostport##*:}
  if [ -n "$(listener "$port")" ]; then
    echo "run.sh: port $port ($hostport) is already in use, perhaps by another demo; stop it or move this one (CRMSYNC_DEMO_NODE, CRMSYNC_DEMO_EMULATOR)" >&2
    busy=1
  fi
done
[ $busy -eq 0 ] || exit 2

if [ -z "$BIN" ]; then
  bash scripts/build.sh
  BIN=build/bin
fi

E=http://$EMULATOR
N=http://$NODE
"$BIN/graph-emulator" --listen "$EMULATOR" &
emulator_pid=$!
trap 'kill $emulator_pid 2>/dev/null || true' EXIT
# Ready when our emulator listens; if it exits first (someone took the port
# since the check above), say so rather than talk to the other listener.
ready=0
for _ in $(seq 100); do
  if ! kill -0 "$emulator_pid" 2>/dev/null; then
    echo "run.sh: graph-emulator could not start on $EMULATOR (is the port in use?)" >&2
    exit 2
  fi
  if listener "${EMULATOR##*:}" | grep -q "pid=$emulator_pid,"; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ $ready -eq 0 ]; then
  echo "run.sh: graph-emulator did not listen on $EMULATOR" >&2
  exit 2
fi
curl -sf -X POST "$E/_emulator/tenants" --data @scripts/demo-tenant.json >/dev/null
# The emulator forgets everything when it stops; a tenant installed by an
# earlier run (its organization is in the data directory) has consented.
consented='[]'
[ -d "$DATA/rocksdb" ] && consented='["contoso.example"]'
curl -sf -X POST "$E/_emulator/apps" \
  -d '{"client_id":"crmsync-demo","client_secret":"demo-secret","tenants":'"$consented"'}' >/dev/null

env_prefix=""
[ "$NODE" != 127.0.0.1:8080 ] && env_prefix+="CRMSYNC_N=$N CRMSYNC_NODE=$N "
[ "$EMULATOR" != 127.0.0.1:8090 ] && env_prefix+="CRMSYNC_E=$E "
[ "$DATA" != data ] && env_prefix+="CRMSYNC_DATA=$DATA CRMSYNC_ADMIN_TOKEN_FILE=$DATA/admin.token "
[ -n "$env_prefix" ] && env_prefix="export ${env_prefix% }; "
cat <<HELP

crmsync demo: crmsyncd on $N, Office 365 (graph-emulator) on $E
In a browser (a private window per person: the session is a cookie):
- $N/o365/install: Ada picks herself, accepts the terms, grants consent
- $N/o365/signin: Carol is not a member yet and clicks "Request to join"
- $E/_emulator/mail?user=ada@contoso.example lists the e-mails Ada sent:
- the join request's link signs Ada in to "Approve & Add" (paid edition)
- an invitation's /invite/... link signs the invitee in to "Join"
In another terminal, at $(pwd), walk through install -> invite -> accept ->
join request -> approve -> calendar sync. Each step exports what it returns
(CRMSYNC_ORG, CRMSYNC_TOKEN, ...); nothing is copied by hand:

  ${env_prefix}S=scripts/demo-env.sh
  eval "\$(\$S install ada@contoso.example)"       # R1-R3: the org and Ada, its super admin
  curl -s -X PATCH \$CRMSYNC_N/api/v1/orgs/\$CRMSYNC_ORG -H "Authorization: Bearer \$CRMSYNC_ADMIN" \\
    -H 'Content-Type: application/json' -d '{"edition":"paid"}'   # invitations need a paid edition
  eval "\$(\$S invite bob@contoso.example)"        # Ada invites Bob
  eval "\$(\$S link ada@contoso.example)"          # the invitation e-mail's link (sent from Ada's mailbox)
  eval "\$(\$S signin \$CRMSYNC_LINK bob@contoso.example)"   # Bob opens it: a session to accept with
  eval "\$(\$S accept)"                             # Bob is a CRM user (CRMSYNC_USER_TOKEN)
  eval "\$(\$S signin \$CRMSYNC_N/o365/signin carol@contoso.example)"   # Carol is no member
  eval "\$(\$S join)"                               # she asks to join (CRMSYNC_REQUEST)
  curl -s -X POST \$CRMSYNC_N/api/v1/orgs/\$CRMSYNC_ORG/join-requests/\$CRMSYNC_REQUEST/approve \\
    -H "Authorization: Bearer \$CRMSYNC_TOKEN"      # Ada approves
  curl -s -X PUT \$CRMSYNC_N/api/v1/orgs/\$CRMSYNC_ORG/users/me/calendar-sync \\
    -H "Authorization: Bearer \$CRMSYNC_TOKEN" -H 'Content-Type: application/json' \\
    -d '{"enabled":true}'                          # R13: Ada's calendar syncs
  build/bin/crmsyncctl sync --follow ada@contoso.example   # until it is active
  scripts/outlook.sh create ada@contoso.example "Lunch" 2027-01-10T12:00:00Z 2027-01-10T13:00:00Z   # Ada in Outlook
  build/bin/crmsyncctl audit \$CRMSYNC_ORG         # who did what (reads $DATA/admin.token)

HELP
"$BIN/crmsyncd" --data-dir "$DATA" --listen "$NODE" \
  --graph-base-url "$E/v1.0" --login-base-url "$E" \
  --client-id crmsync-demo --client-secret demo-secret "$@"
