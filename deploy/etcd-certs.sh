#!/usr/bin/env bash
# Makes the TLS material of a three-member etcd and of its clients, the
# crmsync nodes (deploy/README.md, "etcd"):
#
#   deploy/etcd-certs.sh DIR MEMBER=NAME[,NAME...] ...
#
# DIR/ca.pem and DIR/ca.key: etcd's own CA (made only if DIR/ca.key does
# not exist yet). For each MEMBER: DIR/MEMBER.pem and DIR/MEMBER.key, a
# certificate for both of etcd's ports (server and peer: serverAuth and
# clientAuth) naming every NAME (an IP address or a DNS name, wildcards
# allowed). And DIR/client.pem, DIR/client.key: the certificate the crmsync
# nodes present to etcd (CN crmsync; etcd's --client-cert-auth). Keys are
# written 0600. Keep DIR/ca.key off the machines that run etcd and crmsync.
#
#   deploy/etcd-certs.sh certs e1=127.0.0.1,localhost e2=127.0.0.1 e3=127.0.0.1
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DIR MEMBER=NAME[,NAME...] ..." >&2
  exit 2
fi
dir=$1
shift
days=${ETCD_CERT_DAYS:-825}
mkdir -p "$dir"
umask 077
key="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
if [ ! -f "$dir/ca.key" ]; then
  # shellcheck disable=SC2086
  openssl req -x509 $key -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -days "$days" -subj "/CN=crmsync etcd CA $(date -u +%Y%m%dT%H%M%SZ)" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
leaf() { # NAME CN EXTENDED-KEY-USAGE SUBJECT-ALT-NAMES
  local ext
  ext=$(mktemp)
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyAgreement" \
    "extendedKeyUsage=$3" >"$ext"
  [ -n "$4" ] && printf '%s\n' "subjectAltName=$4" >>"$ext"
  # shellcheck disable=SC2086
  openssl req $key -keyout "$dir/$1.key" -out "$dir/$1.csr" \
    -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/$1.pem" -days "$days" -extfile "$ext" 2>/dev/null
  rm -f "$ext" "$dir/$1.csr"
}
for arg in "$@"; do
  member=${arg%%=*}
  names=${arg#*=}
  case $member in
  *[!A-Za-z0-9._-]* | "")
    echo "$0: member '$member' must be letters, digits, '.', '_' or '-'" >&2
    exit 2
    ;;
  esac
  [ "$names" != "$arg" ] && [ -n "$names" ] ||
    { echo "$0: '$arg' names no host (MEMBER=NAME[,NAME...])" >&2; exit 2; }
  sans=""
  IFS=, read -ra list <<<"$names"
  for n in "${list[@]}"; do
    if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then
      sans+="${sans:+,}IP:$n"
    else
      sans+="${sans:+,}DNS:$n"
    fi
  done
  leaf "$member" "$member" "serverAuth,clientAuth" "$sans"
done
leaf client crmsync clientAuth ""
chmod 0644 "$dir/ca.pem" "$dir"/*.pem
