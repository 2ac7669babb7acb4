#!/usr/bin/env bash
# Installs the Debian 12 packages crmsync needs, only if some are missing.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config
  libcaf-dev libboost-dev libsimdjson-dev librocksdb-dev catch2
  libssl-dev libsodium-dev libcli11-dev libhowardhinnant-date-dev tzdata
  # crmsyncd's allocator (bin/CMakeLists.txt): returns what passivated
  # actors freed
  libjemalloc-dev
  curl clang-format openssl
  # the demo's scripts (demo-env.sh, outlook.sh) read JSON; run.sh checks
  # its ports with ss
  jq iproute2
  # libFuzzer targets (fuzz/, scripts/fuzz.sh): clang and its runtimes
  clang libclang-rt-14-dev
  libedit-dev
  # the logger (common/log.cpp): spdlog's sinks under our line formats
  libspdlog-dev
  # metrics: prometheus-cpp's core (registry, text serializer); the -dev
  # package also brings the civetweb/curl parts, which are not linked.
  prometheus-cpp-dev
  # the cluster's coordination store (ADR 0007): the etcd tests start a
  # one-member etcd of their own; deploy/ runs three
  etcd-server
  # the web admin page's browser test (tests/web/): headless Chromium,
  # driven by playwright-core from npm
  chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
