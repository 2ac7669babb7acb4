#!/usr/bin/env bash
# deploy/Dockerfile's runtime stage installs what the programs link: every
# shared library of crmsyncd, crmsyncctl and graph-emulator (ldd) must come
# from a package the stage names, or from one of their dependencies, or
# from libc6 (the base image). The image cannot be built where there is no
# Docker daemon; this catches the drift that made it fail at start (a
# library added to the build, e.g. spdlog or CAF's OpenSSL module, but not
# to the image).
#   tests/deploy/image_libs_test.sh BIN_DIR
set -euo pipefail
BIN=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."
command -v dpkg >/dev/null && command -v apt-cache >/dev/null ||
  { echo "FAIL: needs dpkg and apt-cache (a Debian machine, like the image)" >&2; exit 1; }
# The runtime stage: the apt-get install after the last FROM.
listed=$(awk '/^FROM /{stage++} {print stage "\t" $0}' deploy/Dockerfile |
  awk -F'\t' -v last="$(grep -c '^FROM ' deploy/Dockerfile)" '$1 == last {print $2}' |
  sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' |
  grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vxE 'apt-get|install|rm|update|and|DEBIAN_FRONTEND.*|RUN' | sort -u)
[ -n "$listed" ] || { echo "FAIL: no packages found in the runtime stage" >&2; exit 1; }
# What they bring along (hard dependencies only), plus the base image's libc.
# shellcheck disable=SC2086
closure=$( (echo libc6; echo "$listed"; apt-cache depends --recurse --no-recommends \
  --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances $listed 2>/dev/null |
  sed -n 's/^ *\(Pre\)\{0,1\}Depends: <\{0,1\}\([^ >:]*\).*/\2/p') | sort -u)
# Every library once, then one dpkg -S for all (it reads every package's
# file list per call).
libs=$(for prog in crmsyncd crmsyncctl graph-emulator; do
  ldd "$BIN/$prog" | awk -v p="$prog" '$3 ~ /^\// {print p "\t" $3}'
done)
# Packages record a library under /lib or /usr/lib: ask for both the path
# ldd gives and the file it resolves to (an unknown path makes dpkg exit 1).
paths=$(cut -f2 <<<"$libs" | sort -u; cut -f2 <<<"$libs" | sort -u | xargs readlink -f)
# shellcheck disable=SC2046
owners=$( { dpkg -S $(sort -u <<<"$paths") 2>/dev/null || true; } |
  sed 's/^\([^:]*\)\(:[a-z0-9]*\)\{0,1\}: /\1\t/')
missing=0
while IFS=$'\t' read -r prog lib; do
  real=$(readlink -f "$lib")
  pkg=$(awk -F'\t' -v a="$lib" -v b="$real" '$2 == a || $2 == b {print $1; exit}' <<<"$owners")
  if [ -z "$pkg" ]; then
    echo "FAIL: $prog links $lib, which no installed package owns" >&2
    missing=1
  elif ! grep -qx "$pkg" <<<"$closure"; then
    echo "FAIL: $prog links $lib ($pkg), which deploy/Dockerfile's runtime stage does not install" >&2
    missing=1
  fi
done <<<"$libs"
[ $missing -eq 0 ] || exit 1
echo "PASS: $(wc -l <<<"$listed") packages listed cover every library of crmsyncd, crmsyncctl, graph-emulator"
