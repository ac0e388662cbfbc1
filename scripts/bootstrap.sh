#!/usr/bin/env bash
# Sets up a fresh clone: pnpm 10 (pinned in package.json), dependencies, native builds.
# Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(node -p "require('./package.json').packageManager.split('@')[1]")
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$want" ]; then
  npm install -g "pnpm@$want" >/dev/null
fi

# better-sqlite3 builds from source here: use the headers Node ships instead of downloading them.
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
# onnxruntime-node's install script fetches GPU libraries from outside the npm registry; the CPU
# provider bundled in the package works without it (its script is also disabled in pnpm-workspace.yaml).
export ONNXRUNTIME_NODE_INSTALL=skip

pnpm install --frozen-lockfile --reporter=append-only | tail -n 5
