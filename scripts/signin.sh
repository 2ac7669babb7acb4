#!/usr/bin/env bash
# Plays a person's browser through an Office 365 sign-in against the demo's
# graph-emulator: follows the redirects from START_URL (e.g.
# http://127.0.0.1:8080/o365/install, /o365/signin or an invitation link),
# signing in as PERSON (a userPrincipalName) wherever the identity platform
# asks, and prints crmsyncd's final answer. Like a browser it keeps cookies
# (a cookie jar for this run): crmsyncd only finishes a sign-in in the
# browser that started it.
#   scripts/signin.sh START_URL PERSON
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: scripts/signin.sh START_URL PERSON" >&2
  exit 2
fi
url=$1
person=$2
jar=$(mktemp)
body=$(mktemp)
trap 'rm -f "$jar" "$body"' EXIT
for _ in 1 2 3 4 5 6 7 8; do
  case "$url" in
    */oauth2/v2.0/authorize\?* | */adminconsent\?*)
      url="$url&login_hint=$person" ;;
  esac
  next=$(curl -sS -c "$jar" -b "$jar" -o "$body" -w '%{redirect_url}' "$url")
  if [ -z "$next" ]; then
    cat "$body"
    echo
    exit 0
  fi
  url=$next
done
echo "signin.sh: too many redirects" >&2
exit 1
