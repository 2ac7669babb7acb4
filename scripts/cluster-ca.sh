#!/usr/bin/env bash
# Makes a cluster CA and one certificate per node for the cluster's mutual
# TLS (crmsyncd --cluster-ca-file/--cluster-cert/--cluster-key).
#
#   scripts/cluster-ca.sh DIR NODE...
#
# DIR/ca.pem and DIR/ca.key are the CA (made only if DIR/ca.key does not
# exist yet, so running it again adds nodes under the same CA); for each
# NODE, DIR/NODE.pem (certificate, CN=NODE, signed by the CA) and
# DIR/NODE.key. Keys are written 0600. Good for tests and a first cluster;
# in production keep the CA key off the nodes (docs/SECURITY.md says how to
# rotate).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DIR NODE..." >&2
  exit 2
fi
dir=$1
shift
days=${CLUSTER_CERT_DAYS:-825}
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "$days" \
    -subj "/CN=crmsync cluster CA $(date -u +%Y%m%dT%H%M%SZ)" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
for node in "$@"; do
  case $node in
  *[!A-Za-z0-9._-]* | "")
    echo "$0: node id '$node' must be letters, digits, '.', '_' or '-'" >&2
    exit 2
    ;;
  esac
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/$node.key" -out "$dir/$node.csr" \
    -subj "/CN=$node" 2>/dev/null
  ext=$(mktemp)
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyAgreement" \
    "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=DNS:$node" >"$ext"
  openssl x509 -req -in "$dir/$node.csr" -CA "$dir/ca.pem" \
    -CAkey "$dir/ca.key" -CAcreateserial -out "$dir/$node.pem" \
    -days "$days" -extfile "$ext" 2>/dev/null
  rm -f "$ext" "$dir/$node.csr"
done
chmod 0644 "$dir/ca.pem" "$dir"/*.pem
