#!/usr/bin/env bash
# deploy/'s files name only settings crmsyncd has: every CRMSYNC_* variable
# in the systemd unit, its environment file, the Kubernetes manifests, the
# image and its entrypoint is one of `crmsyncd --help`'s (Env:...) names
# or one the entrypoint itself reads (listed below), and every key of
# deploy/crmsyncd.conf.example (set or commented out) is a flag. A renamed
# flag would otherwise leave a deployment silently on a default (a config
# file's unknown key is ignored).
#   tests/deploy/flags_test.sh BIN_DIR
set -euo pipefail
BIN=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."
help=$("$BIN/crmsyncd" --help)
envs=$(grep -o 'Env:CRMSYNC_[A-Z0-9_]*' <<<"$help" | sed 's/^Env://' | sort -u)
flags=$(grep -o -- '--[a-z][a-z0-9-]*' <<<"$help" | sort -u)
[ "$(wc -l <<<"$envs")" -gt 50 ] || { echo "FAIL: crmsyncd --help lists no environment names" >&2; exit 1; }
# Read by deploy/crmsync-entrypoint.sh, not by crmsyncd.
entrypoint="CRMSYNC_REPLICAS CRMSYNC_PEER_SERVICE CRMSYNC_CLUSTER_PORT
CRMSYNC_CLUSTER_DOMAIN CRMSYNC_CLUSTER_TLS_DIR CRMSYNC_ETCD_TLS_DIR"
bad=0
for f in deploy/crmsyncd.service deploy/cluster.env.example deploy/k8s/*.yaml \
  deploy/crmsync-entrypoint.sh deploy/Dockerfile; do
  for v in $(grep -o 'CRMSYNC_[A-Z0-9_]*[A-Z0-9]' "$f" | sort -u); do
    grep -qx "$v" <<<"$envs" && continue
    grep -qw "$v" <<<"$entrypoint" && continue
    echo "FAIL: $f names $v, which is no crmsyncd setting" >&2
    bad=1
  done
done
for k in $(sed -n 's/^#\{0,1\} *\([a-z][a-z0-9-]*\) *=.*/\1/p' deploy/crmsyncd.conf.example | sort -u); do
  grep -qx -- "--$k" <<<"$flags" && continue
  echo "FAIL: deploy/crmsyncd.conf.example has the key '$k', which is no crmsyncd flag" >&2
  bad=1
done
[ $bad -eq 0 ] || exit 1
echo "PASS"
