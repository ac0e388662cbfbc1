#!/usr/bin/env bash
# Makes the self-signed certificate the https artifact-transport test serves with (localhost,
# 127.0.0.1). Test-only: the key is public in this repository and trusted nowhere else.
# Run from this folder: bash make-cert.sh
set -euo pipefail
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500 \
  -subj '/CN=flotilla-test-artifacts' \
  -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
  -addext 'basicConstraints=critical,CA:TRUE' \
  -keyout key.pem -out cert.pem
