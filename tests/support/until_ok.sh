# Sourced by the shell tests (tests/demo/, tests/deploy/): waiting for a
# condition with a deadline instead of a fixed sleep.
# until_ok DEADLINE_S CMD…: retries CMD until it succeeds or the deadline passes.
until_ok() {
  local end=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}
