#!/usr/bin/env bash
# Fails when any C++ source differs from .clang-format's layout.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "clang-format not installed; skipping the format check"
  exit 0
fi
git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror
