#!/usr/bin/env bash
# Configures and builds crmsync into build/ (binaries in build/bin/).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
bash scripts/install-deps.sh
# ccache hits across checkouts in different folders (CI clones elsewhere).
export CCACHE_BASEDIR="$root"
export CCACHE_NOHASHDIR=1
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
