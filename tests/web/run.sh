#!/usr/bin/env bash
# The web admin page's end-to-end test in headless Chromium.
#
#   bash tests/web/run.sh PATH/TO/sync_e2e_tests
#
# Needs Debian's chromium (scripts/install-deps.sh installs it) and Node
# (>= 18) with npm; installs playwright-core with `npm ci` from
# package-lock.json when node_modules is missing or older than the lock
# (playwright-core downloads no browser). Then runs the hidden "[web]" case
# of sync_e2e_tests: it starts graph-emulator and crmsyncd, makes an
# organization with a synced user and some traffic, and runs web_test.mjs.
set -euo pipefail

driver=${1:?usage: run.sh PATH/TO/sync_e2e_tests}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { echo "web: $*" >&2; }

if [[ ! -x $driver ]]; then
  say "not an executable: $driver"
  exit 2
fi
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
  say "$chromium is missing: install Debian's chromium (scripts/install-deps.sh)"
  exit 2
fi
# shellcheck source=../support/npm_deps.sh
source "$here/../support/npm_deps.sh"
require_node
npm_ci_when_stale "$here" playwright-core

export WEB_TEST_DIR=$here CHROMIUM=$chromium
exec "$driver" "[web]"
