#!/usr/bin/env bash
# Makes sure wrk (Debian's, 4.1) is installed for the HTTP benches that drive their servers with it
# (bench:agent:http) and the test of that driver. As root it installs it with apt-get when missing;
# otherwise it fails with what to do.
set -euo pipefail
source "$(dirname "$0")/lib/apt-install.sh"

command -v wrk >/dev/null 2>&1 && exit 0
apt_install ensure-wrk wrk ' (or run the bench with --client undici)'
command -v wrk >/dev/null 2>&1 || { echo "ensure-wrk: wrk installed but not on PATH" >&2; exit 1; }
