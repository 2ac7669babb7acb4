#!/usr/bin/env bash
# Runs every libFuzzer target (fuzz/) for SECONDS each over a copy of its
# seed corpus (fuzz/corpus/TARGET), after building them with clang into
# build-fuzz/ (installing what is missing). Prints runs, time and crashes
# per target and exits 1 when any target crashed; crash inputs are kept in
# the folder it prints.
#
#   scripts/fuzz.sh [--no-build] SECONDS [TARGET...]
#   scripts/fuzz.sh --build-only
#
# FUZZ_JOBS targets run at once (default 1). FUZZ_OUT is where corpora,
# logs and crashes go; without it a folder under /tmp that is removed
# again when nothing crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

build=1
if [ "${1:-}" = "--no-build" ]; then
  build=0
  shift
fi
if [ "${1:-}" = "--build-only" ]; then
  build=2
elif ! [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [--no-build] SECONDS [TARGET...] | --build-only" >&2
  exit 2
fi

if [ $build -ge 1 ]; then
  bash scripts/install-deps.sh
  export CCACHE_BASEDIR="$root"
  export CCACHE_NOHASHDIR=1
  cmake -S . -B build-fuzz -DCRMSYNC_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-fuzz --target fuzz_targets -j"$(nproc)"
  [ $build -eq 2 ] && exit 0
fi

seconds=$1
shift
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(ls fuzz/corpus)
fi
out="${FUZZ_OUT:-}"
keep=1
if [ -z "$out" ]; then
  out="$(mktemp -d /tmp/crmsync-fuzz.XXXXXX)"
  keep=0 # removed again unless something crashed
fi
jobs="${FUZZ_JOBS:-1}"

run_one() {
  local t=$1 dir="$out/$1"
  local extra=()
  # Room for a request head up to the server's 16 KiB header limit.
  [ "$t" = http_request_fuzz ] && extra=(-max_len=20000)
  mkdir -p "$dir/corpus" "$dir/crashes"
  cp fuzz/corpus/"$t"/* "$dir/corpus/"
  set +e
  build-fuzz/bin/"$t" -max_total_time="$seconds" -timeout=25 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/crashes/" "${extra[@]}" "$dir/corpus" \
    >"$dir/log" 2>&1
  echo $? >"$dir/rc"
}

running=0
for t in "${targets[@]}"; do
  if [ ! -x "build-fuzz/bin/$t" ]; then
    echo "no such fuzz target: $t (build-fuzz/bin/$t)" >&2
    exit 2
  fi
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=0
printf '%-20s %12s %8s %8s %8s\n' target runs seconds corpus crashes
for t in "${targets[@]}"; do
  dir="$out/$t"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  time=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$dir/log" | tail -1)
  crashes=$(find "$dir/crashes" -type f | wc -l)
  files=$(find "$dir/corpus" -type f | wc -l)
  if [ "$(cat "$dir/rc")" != 0 ] || [ "$crashes" != 0 ]; then
    failed=1
    [ "$crashes" = 0 ] && crashes="rc $(cat "$dir/rc")"
  fi
  printf '%-20s %12s %8s %8s %8s\n' "$t" "${runs:-?}" "${time:-?}" "$files" "$crashes"
done
if [ $failed -ne 0 ]; then
  echo "logs, corpora and crash inputs: $out"
  echo "fuzzing found crashes; reproduce with build-fuzz/bin/TARGET FILE" >&2
  exit 1
fi
if [ $keep -eq 1 ]; then
  echo "logs and corpora: $out"
else
  rm -rf "$out"
fi
