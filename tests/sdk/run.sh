#!/usr/bin/env bash
# Conformance test of graph-emulator with Microsoft's JavaScript SDK
# (@microsoft/microsoft-graph-client), over HTTPS with a throwaway CA.
#
#   bash tests/sdk/run.sh PATH/TO/graph-emulator
#
# Installs node/npm (Debian packages) when missing and the SDK (npm ci,
# from package-lock.json) when node_modules is missing or stale; makes a
# CA and a server certificate for localhost/127.0.0.1 with openssl; starts
# the emulator with a plain and a TLS listener on loopback ports chosen by
# the kernel; runs sdk_test.mjs with NODE_EXTRA_CA_CERTS set to the CA; and
# exits with the test's status. The emulator and the temporary directory
# never outlive the script.
set -euo pipefail

emulator=${1:?usage: run.sh PATH/TO/graph-emulator}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ ! -x $emulator ]]; then
  echo "sdk: not an executable: $emulator" >&2
  exit 2
fi
emulator=$(cd "$(dirname "$emulator")" && pwd)/$(basename "$emulator")

say() { echo "sdk: $*" >&2; }

# -- tools -------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "node/npm missing: installing the Debian packages nodejs and npm"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq nodejs npm
fi
# shellcheck source=../support/npm_deps.sh
source "$here/../support/npm_deps.sh"
require_node openssl

# -- dependencies: npm ci when node_modules is missing or older than the lock --
npm_ci_when_stale "$here" @microsoft/microsoft-graph-client

# -- temporary directory, emulator, cleanup -----------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/crmsync-sdk.XXXXXX")
emu_pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [[ -n $emu_pid ]] && kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$emu_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -- throwaway CA and a server certificate for localhost / 127.0.0.1 ----------
(
  cd "$tmp"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca.key -out ca.pem -days 2 -subj "/CN=crmsync sdk test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
  cat >server.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EOF
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 2 -extfile server.ext -out server.pem 2>/dev/null
  openssl verify -CAfile ca.pem server.pem >/dev/null
) || { say "could not make the test certificates with openssl"; exit 2; }

"$emulator" --listen 127.0.0.1:0 --tls-listen 127.0.0.1:0 \
  --tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key" \
  --notification-ca-file "$tmp/ca.pem" \
  >"$tmp/emulator.out" 2>"$tmp/emulator.err" &
emu_pid=$!

# Wait for both listening lines (deadline 20 s, polled every 50 ms).
http_url="" https_url=""
deadline=$((SECONDS + 20))
while [[ -z $http_url || -z $https_url ]]; do
  if ! kill -0 "$emu_pid" 2>/dev/null; then
    say "graph-emulator exited before listening:"
    cat "$tmp/emulator.err" >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    say "graph-emulator did not print its listening lines within 20 s:"
    cat "$tmp/emulator.out" "$tmp/emulator.err" >&2
    exit 1
  fi
  http_url=$(sed -n 's|^graph-emulator listening on \(http://127\.0\.0\.1:[0-9]*\)$|\1|p' "$tmp/emulator.out")
  https_url=$(sed -n 's|^graph-emulator listening on \(https://127\.0\.0\.1:[0-9]*\)$|\1|p' "$tmp/emulator.out")
  [[ -n $http_url && -n $https_url ]] || sleep 0.05
done
say "graph-emulator at $http_url and $https_url (pid $emu_pid)"

status=0
(
  cd "$here"
  NODE_EXTRA_CA_CERTS="$tmp/ca.pem" \
    EMULATOR_HTTPS_URL="$https_url" EMULATOR_HTTP_URL="$http_url" \
    HOOK_TLS_CERT="$tmp/server.pem" HOOK_TLS_KEY="$tmp/server.key" \
    exec node sdk_test.mjs
) || status=$?
if ((status != 0)); then
  say "FAILED (exit $status); graph-emulator's stderr:"
  tail -n 50 "$tmp/emulator.err" >&2 || true
fi
exit "$status"
