#!/usr/bin/env bash
# Runs one step of the demo's API walk-through against the demo started by
# scripts/run.sh and prints `export CRMSYNC_…=…` lines for what the step
# returned, so nothing is copied out of JSON by hand:
#   eval "$(scripts/demo-env.sh STEP ARGS…)"
# Steps (each also exports CRMSYNC_N, CRMSYNC_E and CRMSYNC_ADMIN):
#   admin                  the node, the emulator, the service admin token
#   install PERSON         signs PERSON in at /o365/install (an Office 365
#                          admin): CRMSYNC_ORG, CRMSYNC_TOKEN, CRMSYNC_ME
#   invite PERSON          invites PERSON (a userPrincipalName of the
#                          tenant) with $CRMSYNC_TOKEN: CRMSYNC_INVITE
#   link INBOX             the last link e-mailed to INBOX: CRMSYNC_LINK
#   signin URL PERSON      plays PERSON's browser from URL (a member gets a
#                          token, anyone else a session): CRMSYNC_SESSION,
#                          CRMSYNC_ACCEPT_URL, or CRMSYNC_USER_TOKEN and
#                          CRMSYNC_USER_ID
#   accept                 accepts $CRMSYNC_ACCEPT_URL with $CRMSYNC_SESSION:
#                          CRMSYNC_USER_TOKEN, CRMSYNC_USER_ID
#   join                   asks to join with $CRMSYNC_SESSION: CRMSYNC_REQUEST
# The names all start with CRMSYNC_ so they never replace the shell's own
# ($USER, $HOME, $PATH…). Where the demo runs: CRMSYNC_N (default
# http://127.0.0.1:8080), CRMSYNC_E (http://127.0.0.1:8090), and the node's
# data directory CRMSYNC_DATA (data). Errors go to stderr with exit 1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
N=${CRMSYNC_N:-http://127.0.0.1:8080}
E=${CRMSYNC_E:-http://127.0.0.1:8090}
DATA=${CRMSYNC_DATA:-data}

die() {
  echo "demo-env.sh: $*" >&2
  exit 1
}
command -v jq >/dev/null || die "needs jq (scripts/install-deps.sh installs it)"
[ $# -ge 1 ] || die "usage: eval \"\$(scripts/demo-env.sh STEP ARGS…)\"; steps: admin, install, invite, link, signin, accept, join"
[ -r "$DATA/admin.token" ] || die "no $DATA/admin.token: is scripts/run.sh running (from this checkout)?"
ADMIN=$(head -n1 "$DATA/admin.token")

out() { printf 'export %s=%q\n' "$1" "$2"; }
# The value at a jq path of a JSON answer, or a clear error with the answer.
field() {
  local v
  v=$(jq -er "$2 // empty" <<<"$1" 2>/dev/null) || die "$3: $1"
  printf '%s' "$v"
}
need() { [ -n "${!1:-}" ] || die "\$$1 is not set: run the step that exports it first"; }
# curl that prints the body and fails on a transport error only.
call() { curl -sS "$@" || die "cannot reach ${N} (is scripts/run.sh running?)"; }

step=$1
shift
out CRMSYNC_N "$N"
out CRMSYNC_E "$E"
out CRMSYNC_ADMIN "$ADMIN"
case "$step" in
  admin) ;;
  install)
    [ $# -eq 1 ] || die "usage: install PERSON"
    a=$(bash scripts/signin.sh "$N/o365/install" "$1")
    out CRMSYNC_ORG "$(field "$a" .organization.id "install did not answer an organization")"
    out CRMSYNC_TOKEN "$(field "$a" .user.token "install did not answer a token")"
    out CRMSYNC_ME "$(field "$a" .user.id "install did not answer a user")"
    ;;
  invite)
    [ $# -eq 1 ] || die "usage: invite PERSON"
    need CRMSYNC_ORG
    need CRMSYNC_TOKEN
    people=$(call "$N/api/v1/orgs/$CRMSYNC_ORG/office365/users" -H "Authorization: Bearer $CRMSYNC_TOKEN")
    id=$(jq -r --arg p "$1" '.items[]? | select(.user_principal_name == $p) | .id' <<<"$people" | head -n1)
    [ -n "$id" ] || die "no Office 365 user $1 in the tenant: $people"
    a=$(call -X POST "$N/api/v1/orgs/$CRMSYNC_ORG/invites" -H "Authorization: Bearer $CRMSYNC_TOKEN" \
      -H 'Content-Type: application/json' -d "{\"office365_user_ids\":[\"$id\"]}")
    out CRMSYNC_INVITE "$(field "$a" '(.items // .invites // [.])[0].id' "the invitation was not made")"
    ;;
  link)
    [ $# -eq 1 ] || die "usage: link INBOX"
    mail=$(curl -sS --get "$E/_emulator/mail" --data-urlencode "user=$1") || die "cannot reach $E"
    link=$(jq -r '[.value[]? | .message | tostring | scan("https?://[^\"\\\\<> ]+")] | map(select(test("/(invite|join-requests)/"))) | last // empty' <<<"$mail")
    [ -n "$link" ] || die "no link in $1's mail: $mail"
    out CRMSYNC_LINK "$link"
    ;;
  signin)
    [ $# -eq 2 ] || die "usage: signin URL PERSON"
    a=$(bash scripts/signin.sh "$1" "$2")
    if tok=$(jq -er '.user.token // empty' <<<"$a" 2>/dev/null); then
      out CRMSYNC_USER_TOKEN "$tok"
      out CRMSYNC_USER_ID "$(field "$a" .user.id "no user")"
    else
      out CRMSYNC_SESSION "$(field "$a" .office365_session "the sign-in failed")"
      out CRMSYNC_ACCEPT_URL "$(jq -r '.invite_accept_url // empty' <<<"$a")"
    fi
    ;;
  accept)
    need CRMSYNC_ACCEPT_URL
    need CRMSYNC_SESSION
    a=$(call -X POST "$CRMSYNC_ACCEPT_URL" -H "Authorization: Bearer $CRMSYNC_SESSION" \
      -H 'Content-Type: application/json' -d '{"accept_terms":true}')
    out CRMSYNC_USER_TOKEN "$(field "$a" .user.token "the invitation was not accepted")"
    out CRMSYNC_USER_ID "$(field "$a" .user.id "no user")"
    ;;
  join)
    need CRMSYNC_SESSION
    a=$(call -X POST "$N/api/v1/join-requests" -H "Authorization: Bearer $CRMSYNC_SESSION")
    out CRMSYNC_REQUEST "$(field "$a" '(.request // .).id' "the join request was not made")"
    ;;
  *) die "unknown step '$step'; steps: admin, install, invite, link, signin, accept, join" ;;
esac
