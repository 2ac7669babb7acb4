#!/usr/bin/env bash
# Installs what is missing, builds, and runs one crmsyncd node on its
# embedded defaults: http://127.0.0.1:8080, data in ./data (the admin token
# is generated into data/admin.token). Extra arguments go to crmsyncd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec build/bin/crmsyncd --data-dir data "$@"
