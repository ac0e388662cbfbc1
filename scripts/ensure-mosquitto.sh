#!/usr/bin/env bash
# Makes sure mosquitto (2.0.x, Debian) with its dynamic-security plugin is installed, for the
# external broker tests (server/test/external-broker). Installs it when missing and running as
# root, as a CI step would; otherwise says what is missing and fails. Never starts the system
# service: each test starts its own mosquitto on a free loopback port.
set -euo pipefail

have_plugin() {
  local f
  for f in /usr/lib/*/mosquitto_dynamic_security.so /usr/lib/mosquitto_dynamic_security.so; do
    [ -f "$f" ] && return 0
  done
  return 1
}

have_all() {
  [ -x /usr/sbin/mosquitto ] && [ -x /usr/bin/mosquitto_ctrl ] && have_plugin
}

if have_all; then
  echo "mosquitto: $(/usr/sbin/mosquitto -h 2>/dev/null | head -1)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "mosquitto with its dynamic-security plugin is missing; run as root: sudo bash $0" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 keeps the package from starting the system-wide broker on port 1883.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get install -y --no-install-recommends mosquitto >/dev/null || { apt-get update >/dev/null && apt-get install -y --no-install-recommends mosquitto >/dev/null; }

if ! have_all; then
  echo "mosquitto installed but the dynamic-security plugin or mosquitto_ctrl is missing" >&2
  exit 1
fi
echo "mosquitto: $(/usr/sbin/mosquitto -h 2>/dev/null | head -1)"
