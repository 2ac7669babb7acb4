#!/usr/bin/env bash
# The container's entrypoint (deploy/Dockerfile): fills in what crmsyncd
# needs from the environment, then execs it. Every setting stays a
# CRMSYNC_* variable (or a flag passed to the container), so the image
# needs no config file.
#
# Defaults for a container: HTTP on 0.0.0.0:8080, data in
# /var/lib/crmsync (the volume).
#
# In a Kubernetes StatefulSet (deploy/k8s/), each pod derives its identity
# from its name, "<set>-<ordinal>" (POD_NAME from the downward API, else
# the hostname), when CRMSYNC_REPLICAS is set:
#   CRMSYNC_NODE_ID         = the pod name (stable: shards belong to it)
#   CRMSYNC_CLUSTER_LISTEN  = $POD_IP:$CRMSYNC_CLUSTER_PORT (default 9090)
#   CRMSYNC_CLUSTER_CA_FILE, _CERT, _KEY = $CRMSYNC_CLUSTER_TLS_DIR/{ca.crt,
#     tls.crt,tls.key} (default dir /etc/crmsync/cluster-tls)
#   CRMSYNC_PEERS           = every other ordinal below CRMSYNC_REPLICAS,
#     <set>-<i>=<set>-<i>.<CRMSYNC_PEER_SERVICE>.<POD_NAMESPACE>.svc.<CRMSYNC_CLUSTER_DOMAIN>:<port>
#     (the stable DNS names the headless Service gives the pods)
# With CRMSYNC_ETCD_ENDPOINTS set (membership in etcd, ADR 0007; the
# k8s/ example), the node id is the pod name, the cluster listener and its
# TLS files are derived as above, no peers are listed (they register in
# etcd), and https endpoints get etcd's TLS files from
# $CRMSYNC_ETCD_TLS_DIR/{ca.crt,tls.crt,tls.key} (default
# /etc/crmsync/etcd-tls). Scaling is then `kubectl scale`: a new pod
# receives its share of shards; drain a pod (crmsyncctl drain) before
# scaling it away.
# Values already set in the environment are kept. A pod whose ordinal is
# not below CRMSYNC_REPLICAS refuses to start: the StatefulSet was scaled
# without changing the membership every node is given.
#
# Arguments starting with "-" go to crmsyncd; anything else runs as a
# command instead (e.g. `docker run IMAGE crmsyncctl --help`).
set -euo pipefail

crmsyncd=${CRMSYNCD:-/usr/local/bin/crmsyncd}

fail() {
  echo "crmsync-entrypoint: $*" >&2
  exit 2
}

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

export CRMSYNC_LISTEN=${CRMSYNC_LISTEN:-0.0.0.0:8080}
export CRMSYNC_DATA_DIR=${CRMSYNC_DATA_DIR:-/var/lib/crmsync}

# This pod's cluster listener and the cluster TLS files (mutual TLS
# between members: the Secret crmsync-cluster-tls mounted at
# /etc/crmsync/cluster-tls with ca.crt, tls.crt, tls.key, as cert-manager
# writes them).
cluster_listener() {
  local port=${CRMSYNC_CLUSTER_PORT:-9090}
  # The pod's own address, never every interface: the cluster port is
  # for the other members only (NetworkPolicy crmsync-cluster-port).
  if [ -z "${CRMSYNC_CLUSTER_LISTEN:-}" ]; then
    [ -n "${POD_IP:-}" ] || fail "POD_IP (downward API status.podIP) or CRMSYNC_CLUSTER_LISTEN is needed in a cluster"
    export CRMSYNC_CLUSTER_LISTEN=$POD_IP:$port
  fi
  local tls=${CRMSYNC_CLUSTER_TLS_DIR:-/etc/crmsync/cluster-tls}
  export CRMSYNC_CLUSTER_CA_FILE=${CRMSYNC_CLUSTER_CA_FILE:-$tls/ca.crt}
  export CRMSYNC_CLUSTER_CERT=${CRMSYNC_CLUSTER_CERT:-$tls/tls.crt}
  export CRMSYNC_CLUSTER_KEY=${CRMSYNC_CLUSTER_KEY:-$tls/tls.key}
}

if [ -n "${CRMSYNC_ETCD_ENDPOINTS:-}" ]; then
  pod=${POD_NAME:-$(hostname)}
  export CRMSYNC_NODE_ID=${CRMSYNC_NODE_ID:-$pod}
  cluster_listener
  if [[ $CRMSYNC_ETCD_ENDPOINTS == https://* ]]; then
    etcd_tls=${CRMSYNC_ETCD_TLS_DIR:-/etc/crmsync/etcd-tls}
    export CRMSYNC_ETCD_CA_FILE=${CRMSYNC_ETCD_CA_FILE:-$etcd_tls/ca.crt}
    if [ -f "$etcd_tls/tls.crt" ]; then
      export CRMSYNC_ETCD_CERT_FILE=${CRMSYNC_ETCD_CERT_FILE:-$etcd_tls/tls.crt}
      export CRMSYNC_ETCD_KEY_FILE=${CRMSYNC_ETCD_KEY_FILE:-$etcd_tls/tls.key}
    fi
  fi
  echo "crmsync-entrypoint: node $CRMSYNC_NODE_ID, membership in etcd at $CRMSYNC_ETCD_ENDPOINTS" >&2
elif [ -n "${CRMSYNC_REPLICAS:-}" ]; then
  replicas=$CRMSYNC_REPLICAS
  [[ $replicas =~ ^[1-9][0-9]*$ ]] || fail "CRMSYNC_REPLICAS must be a positive number, got '$replicas'"
  pod=${POD_NAME:-$(hostname)}
  [[ $pod =~ ^(.+)-(0|[1-9][0-9]*)$ ]] ||
    fail "cannot take an ordinal from the pod name '$pod' (expected <statefulset>-<n>)"
  set_name=${BASH_REMATCH[1]}
  ordinal=${BASH_REMATCH[2]}
  [ "$ordinal" -lt "$replicas" ] ||
    fail "$pod is not among the $replicas members (CRMSYNC_REPLICAS); scaling needs CRMSYNC_REPLICAS changed too, and every node restarted"
  export CRMSYNC_NODE_ID=${CRMSYNC_NODE_ID:-$pod}
  if [ "$replicas" -gt 1 ]; then
    service=${CRMSYNC_PEER_SERVICE:-}
    [ -n "$service" ] || fail "CRMSYNC_PEER_SERVICE (the headless Service's name) is needed with CRMSYNC_REPLICAS > 1"
    namespace=${POD_NAMESPACE:-default}
    domain=${CRMSYNC_CLUSTER_DOMAIN:-cluster.local}
    port=${CRMSYNC_CLUSTER_PORT:-9090}
    cluster_listener
    if [ -z "${CRMSYNC_PEERS:-}" ]; then
      peers=""
      for ((i = 0; i < replicas; i++)); do
        [ "$i" -eq "$ordinal" ] && continue
        peers+="${peers:+,}$set_name-$i=$set_name-$i.$service.$namespace.svc.$domain:$port"
      done
      export CRMSYNC_PEERS=$peers
    fi
  fi
  echo "crmsync-entrypoint: node $CRMSYNC_NODE_ID (ordinal ${ordinal}, ${replicas} members), peers: ${CRMSYNC_PEERS:-none}" >&2
fi

exec "$crmsyncd" "$@"
