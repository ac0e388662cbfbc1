#!/usr/bin/env bash
# Makes sure Debian's chromium is installed for the web console's browser tests (test/browser/).
# As root it installs it with apt-get when missing; otherwise it fails with what to do.
# FLOTILLA_CHROMIUM names another binary (the tests read the same variable).
set -euo pipefail

bin="${FLOTILLA_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$bin" ]; then
  exit 0
fi
if [ -n "${FLOTILLA_CHROMIUM:-}" ]; then
  echo "ensure-chromium: FLOTILLA_CHROMIUM=$bin is not an executable file" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-chromium: $bin is missing and this is not root; install it with: sudo apt-get install -y chromium" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $bin is missing and there is no apt-get here; install Chromium and set FLOTILLA_CHROMIUM" >&2
  exit 1
fi

echo "ensure-chromium: installing Debian's chromium (once per machine)…"
log="$(mktemp)"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  rm -f "$log"
  echo "ensure-chromium: apt-get could not install chromium" >&2
  exit 1
fi
rm -f "$log"
if [ ! -x "$bin" ]; then
  echo "ensure-chromium: chromium installed but $bin is not there" >&2
  exit 1
fi
echo "ensure-chromium: $("$bin" --version 2>/dev/null | tail -n 1)"
