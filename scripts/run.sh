#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo on embedded defaults:
# graph-emulator on http://127.0.0.1:8090 standing in for Microsoft Graph,
# seeded with the Office 365 tenant contoso.example (scripts/demo-tenant.json:
# an admin and a dozen users, two without mailboxes) and the app
# "crmsync-demo", and one crmsyncd node on http://127.0.0.1:8080 pointed at
# it, data in ./data (the admin token is generated into data/admin.token).
# Extra arguments go to crmsyncd. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh

EMULATOR=127.0.0.1:8090
E=http://$EMULATOR
build/bin/graph-emulator --listen "$EMULATOR" &
emulator_pid=$!
trap 'kill $emulator_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -sf "$E/_emulator/state" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf -X POST "$E/_emulator/tenants" --data @scripts/demo-tenant.json >/dev/null
# The emulator forgets everything when it stops; a tenant installed by an
# earlier run (its organization is in ./data) has consented already.
consented='[]'
[ -d data/rocksdb ] && consented='["contoso.example"]'
curl -sf -X POST "$E/_emulator/apps" \
  -d '{"client_id":"crmsync-demo","client_secret":"demo-secret","tenants":'"$consented"'}' >/dev/null

cat <<'HELP'

crmsync demo: crmsyncd on http://127.0.0.1:8080, Office 365 (graph-emulator) on http://127.0.0.1:8090
In another terminal, walk through install -> invite -> accept -> join request -> approve:

  N=http://127.0.0.1:8080; ADMIN=$(cat data/admin.token)
  scripts/signin.sh $N/o365/install ada@contoso.example        # R1-R3: org + super admin (note org id and token)
  ORG=…; TOKEN=…                                                # from that answer
  curl -s -X PATCH $N/api/v1/orgs/$ORG -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"edition":"paid"}'  # invitations need a paid edition
  curl -s $N/api/v1/orgs/$ORG/office365/users -H "Authorization: Bearer $TOKEN"
  curl -s -X POST $N/api/v1/orgs/$ORG/invites -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"office365_user_ids":["a0000000-0000-4000-8000-000000000002"]}'
  curl -s "http://127.0.0.1:8090/_emulator/mail?user=ada@contoso.example"   # the invitation e-mail and its link
  scripts/signin.sh <the link from the e-mail> bob@contoso.example           # -> office365_session, invite_accept_url
  curl -s -X POST <invite_accept_url> -H "Authorization: Bearer <office365_session>" \
    -H 'Content-Type: application/json' -d '{"accept_terms":true}'          # Bob is a CRM user
  scripts/signin.sh $N/o365/signin carol@contoso.example                    # not a member -> session
  curl -s -X POST $N/api/v1/join-requests -H "Authorization: Bearer <carol's session>"
  curl -s $N/api/v1/orgs/$ORG/join-requests -H "Authorization: Bearer $TOKEN"
  curl -s -X POST $N/api/v1/orgs/$ORG/join-requests/<id>/approve -H "Authorization: Bearer $TOKEN"
  build/bin/crmsyncctl --token $ADMIN audit $ORG                # who did what, when

HELP
build/bin/crmsyncd --data-dir data \
  --graph-base-url "$E/v1.0" --login-base-url "$E" \
  --client-id crmsync-demo --client-secret demo-secret "$@"
