#!/usr/bin/env bash
# Makes sure wrk (Debian's, 4.1) is installed for the HTTP benches that drive their servers with it
# (bench:agent:http). As root it installs it with apt-get when missing; otherwise it fails with what to do.
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-wrk: wrk is missing and this is not root; install it with: sudo apt-get install -y wrk (or run the bench with --client undici)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-wrk: wrk is missing and there is no apt-get here; install wrk (or run the bench with --client undici)" >&2
  exit 1
fi
echo "ensure-wrk: installing Debian's wrk (once per machine)…" >&2
log="$(mktemp)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get install -y -qq --no-install-recommends wrk || { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk; }; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  rm -f "$log"
  echo "ensure-wrk: apt-get could not install wrk" >&2
  exit 1
fi
rm -f "$log"
command -v wrk >/dev/null 2>&1 || { echo "ensure-wrk: wrk installed but not on PATH" >&2; exit 1; }
