#!/usr/bin/env bash
# The OpenAPI document of crmsyncd (api/openapi/openapi.json) checked with
# tools from npm, pinned in package-lock.json:
#
#   bash tests/openapi/run.sh lint
#       Redocly's linter (@redocly/cli, rules: redocly.yaml, known and
#       accepted problems: .redocly.lint-ignore.yaml); any problem fails.
#   bash tests/openapi/run.sh validate RECORD_DIR [--coverage]
#       Checks the answers the end-to-end suites recorded (CRMSYNC_OPENAPI_RECORD
#       =RECORD_DIR, tests/support/answer_record.hpp) against the document:
#       each status documented for its operation, each JSON body valid
#       against the schema for it (ajv), other bodies' content types, the
#       Error shape of errors (validate.mjs). --coverage lists what no
#       answer exercised.
#   bash tests/openapi/run.sh answer-check
#       The check itself tells right answers from wrong ones (made-up
#       answers against the document: answer_check_test.mjs).
#   bash tests/openapi/run.sh flow PATH/TO/crmsyncd PATH/TO/graph-emulator
#       Generates TypeScript types from the document (openapi-typescript),
#       compiles flow_test.ts against them (tsc, strict), starts
#       graph-emulator and crmsyncd on loopback ports chosen by the kernel
#       and drives a flow (Office 365 included) through the
#       typed client (openapi-fetch); every answer's status and JSON body are
#       validated against the document (ajv).
#
# Installs the packages with `npm ci` when node_modules is missing or older
# than the lock. Needs Node >= 18 with npm.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { echo "openapi: $*" >&2; }
usage() {
  say "usage: run.sh lint | run.sh validate RECORD_DIR [--coverage]" \
    "| run.sh answer-check | run.sh flow PATH/TO/crmsyncd PATH/TO/graph-emulator"
  exit 2
}
what=${1:-}
[[ $what == lint || $what == validate || $what == answer-check \
  || $what == flow ]] || usage

# shellcheck source=../support/npm_deps.sh
source "$here/../support/npm_deps.sh"
require_node
npm_ci_when_stale "$here" @redocly/cli
bin=$here/node_modules/.bin
document=../../api/openapi/openapi.json # from $here: the ignore file's key

if [[ $what == lint ]]; then
  cd "$here"
  # No telemetry, no update check: the lint reads the document and the
  # two configuration files only.
  export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
  exec "$bin/redocly" lint --config redocly.yaml --max-problems 1000 "$document"
fi

if [[ $what == answer-check ]]; then
  cd "$here"
  exec node answer_check_test.mjs "$document"
fi

if [[ $what == validate ]]; then
  [[ -n ${2:-} ]] || usage
  records=$(cd "$2" 2>/dev/null && pwd) || { say "no such directory: $2"; exit 2; }
  cd "$here"
  exec node validate.mjs "$document" "$records" "${@:3}"
fi

absolute_program() {
  if [[ ! -x ${1:-} ]]; then
    say "not an executable: ${1:-(none)}"
    usage
  fi
  echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
}
crmsyncd=$(absolute_program "${2:-}")
emulator=$(absolute_program "${3:-}")

# Generated and compiled files go to out/ (ignored by git), beside
# node_modules, so that the compiled test finds its packages.
out=$here/out
rm -rf "$out"
mkdir -p "$out"
cd "$here"
say "generating types (openapi-typescript)"
"$bin/openapi-typescript" "$document" --redocly typegen.redocly.yaml \
  --output "$out/api.d.ts" >&2
say "compiling flow_test.ts (tsc, strict)"
"$bin/tsc" -p tsconfig.json
export CRMSYNCD="$crmsyncd" GRAPH_EMULATOR="$emulator"
export OPENAPI_DOCUMENT="$here/$document"
exec node "$out/flow_test.js"
