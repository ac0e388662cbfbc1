#!/usr/bin/env bash
# Makes sure Debian's chromium is installed for the web console's browser tests (test/browser/).
# As root it installs it with apt-get when missing; otherwise it fails with what to do.
# FLOTILLA_CHROMIUM names another binary (the tests read the same variable).
set -euo pipefail
source "$(dirname "$0")/lib/apt-install.sh"

bin="${FLOTILLA_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$bin" ]; then
  exit 0
fi
if [ -n "${FLOTILLA_CHROMIUM:-}" ]; then
  echo "ensure-chromium: FLOTILLA_CHROMIUM=$bin is not an executable file" >&2
  exit 1
fi
apt_install ensure-chromium chromium ', or install Chromium elsewhere and set FLOTILLA_CHROMIUM'
if [ ! -x "$bin" ]; then
  echo "ensure-chromium: chromium installed but $bin is not there" >&2
  exit 1
fi
echo "ensure-chromium: $("$bin" --version 2>/dev/null | tail -n 1)"
