# Node and pinned npm packages for the test scripts that drive a product
# with a JavaScript tool (tests/sdk, tests/web, tests/openapi). Sourced;
# each script defines say() first.
#
#   require_node TOOL...   Node >= 18 and npm on PATH (and TOOLs), else exit 2
#   npm_ci_when_stale DIR PACKAGE
#                          `npm ci` in DIR (from its package-lock.json) when
#                          DIR/node_modules is missing, lacks PACKAGE or was
#                          installed from another lock

require_node() {
  local tool
  for tool in node npm "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { say "$tool is required"; exit 2; }
  done
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if ((major < 18)); then
    say "Node $(node --version) is too old (>= 18 needed: a global fetch)"
    exit 2
  fi
}

npm_ci_when_stale() {
  local dir=$1 package=$2
  local lock_sum stamp
  lock_sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  stamp=$dir/node_modules/.crmsync-lock.sha256
  if [[ ! -f $stamp || $(cat "$stamp") != "$lock_sum" \
        || ! -d $dir/node_modules/$package ]]; then
    say "installing $package and the rest of $dir/package-lock.json (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
    echo "$lock_sum" >"$stamp"
  fi
}
