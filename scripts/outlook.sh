#!/usr/bin/env bash
# "A person in Outlook": changes PERSON's calendar through the demo
# emulator's Microsoft Graph API, as Outlook would (an app of its own with
# a client-credentials token, ordinary /v1.0 routes), so crmsyncd hears of
# it the way it hears of Outlook: by webhook and delta.
#   scripts/outlook.sh list PERSON                          events: id, start, subject
#   scripts/outlook.sh create PERSON SUBJECT START END      prints the new event's id
#   scripts/outlook.sh update PERSON EVENT FIELD=VALUE…     subject, start, end, location, body
#   scripts/outlook.sh delete PERSON EVENT
#   scripts/outlook.sh delete-calendar PERSON              deletes the calendar (R21)
# PERSON is a userPrincipalName (ada@contoso.example); START and END are
# UTC, 2027-01-10T12:00:00Z. The calendar is "CRM" (the one crmsyncd
# syncs), OUTLOOK_CALENDAR names another. The emulator is CRMSYNC_E
# (default http://127.0.0.1:8090).
set -euo pipefail
E=${CRMSYNC_E:-http://127.0.0.1:8090}
CAL_NAME=${OUTLOOK_CALENDAR:-CRM}
die() {
  echo "outlook.sh: $*" >&2
  exit 1
}
usage() {
  sed -n '5,9p' "$0" | sed 's/^# *//' >&2
  exit 2
}
command -v jq >/dev/null || die "needs jq (scripts/install-deps.sh installs it)"
[ $# -ge 2 ] || usage
cmd=$1
person=$2
shift 2
case "$person" in *@*.*) ;; *) die "PERSON must be a userPrincipalName such as ada@contoso.example, not '$person'" ;; esac
domain=${person#*@}

body=$(mktemp)
trap 'rm -f "$body"' EXIT
# graph METHOD PATH [JSON]: the answer's body on stdout; a Graph error dies
# with its code and message.
graph() {
  local status
  local args=(-sS -o "$body" -w '%{http_code}' -X "$1" "$E$2" -H "Authorization: Bearer $token")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  status=$(curl "${args[@]}") || die "cannot reach the emulator at $E (is scripts/run.sh running?)"
  if [ "$status" -ge 400 ]; then
    die "$1 $2: $status $(jq -r '.error | "\(.code): \(.message)"' "$body" 2>/dev/null || cat "$body")"
  fi
  cat "$body"
}
# Outlook's own app, consented in the person's tenant.
secret=outlook-demo-secret
curl -sf -X POST "$E/_emulator/apps" \
  -d "{\"client_id\":\"outlook-demo\",\"client_secret\":\"$secret\",\"tenants\":[\"$domain\"]}" >/dev/null \
  || die "the emulator at $E does not know the tenant $domain (or is not running)"
token=$(curl -sS -X POST "$E/$domain/oauth2/v2.0/token" \
  -d "grant_type=client_credentials&client_id=outlook-demo&client_secret=$secret&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default" \
  | jq -r '.access_token // empty')
[ -n "$token" ] || die "no token for $domain"

user=$(jq -rn --arg p "$person" '$p|@uri')
calendars=$(graph GET "/v1.0/users/$user/calendars")
cal=$(jq -r --arg n "$CAL_NAME" '[.value[] | select(.name == $n) | .id] | first // empty' <<<"$calendars")
[ -n "$cal" ] || die "$person has no calendar \"$CAL_NAME\" (turn calendar sync on first)"
events="/v1.0/users/$user/calendars/$cal/events"
# 2027-01-10T12:00:00Z -> Graph's dateTimeTimeZone in UTC.
when() {
  [[ $1 =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?Z$ ]] \
    || die "'$1' is not a UTC time such as 2027-01-10T12:00:00Z"
  jq -cn --arg t "${1%Z}" '{dateTime: $t, timeZone: "UTC"}'
}

case "$cmd" in
  list)
    [ $# -eq 0 ] || usage
    graph GET "$events?\$top=100" | jq -r '.value[] | "\(.id)\t\(.start.dateTime)\t\(.subject)"'
    ;;
  create)
    [ $# -eq 3 ] || usage
    draft=$(jq -cn --arg s "$1" --argjson a "$(when "$2")" --argjson b "$(when "$3")" \
      '{subject: $s, start: $a, end: $b}')
    graph POST "$events" "$draft" | jq -r .id
    ;;
  update)
    [ $# -ge 2 ] || usage
    id=$1
    shift
    patch='{}'
    for kv in "$@"; do
      k=${kv%%=*}
      v=${kv#*=}
      [ "$k" != "$kv" ] || die "'$kv' is not FIELD=VALUE"
      case "$k" in
        subject) patch=$(jq -c --arg v "$v" '.subject = $v' <<<"$patch") ;;
        location) patch=$(jq -c --arg v "$v" '.location = {displayName: $v}' <<<"$patch") ;;
        body) patch=$(jq -c --arg v "$v" '.body = {contentType: "text", content: $v}' <<<"$patch") ;;
        start | end) patch=$(jq -c --arg k "$k" --argjson v "$(when "$v")" '.[$k] = $v' <<<"$patch") ;;
        *) die "unknown field '$k' (subject, start, end, location, body)" ;;
      esac
    done
    graph PATCH "$events/$(jq -rn --arg i "$id" '$i|@uri')" "$patch" | jq -r .id
    ;;
  delete)
    [ $# -eq 1 ] || usage
    graph DELETE "$events/$(jq -rn --arg i "$1" '$i|@uri')" >/dev/null
    echo "deleted"
    ;;
  delete-calendar)
    [ $# -eq 0 ] || usage
    graph DELETE "/v1.0/users/$user/calendars/$cal" >/dev/null
    echo "deleted the calendar \"$CAL_NAME\" of $person"
    ;;
  *) usage ;;
esac
