# Sourced by the scripts/ensure-*.sh that install a Debian package a test or bench needs.
# apt_install NAME PACKAGE HINT: installs PACKAGE with apt-get when running as root (refreshing the
# package lists only if the first try fails), printing the tail of apt's log on failure; not root,
# or no apt-get, it fails with HINT (what to do instead). NAME prefixes every message.
apt_install() {
  local name="$1" package="$2" hint="$3" log
  if [ "$(id -u)" -ne 0 ]; then
    echo "$name: $package is missing and this is not root; install it with: sudo apt-get install -y $package$hint" >&2
    return 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: $package is missing and there is no apt-get here; install it$hint" >&2
    return 1
  fi
  echo "$name: installing Debian's $package (once per machine)…" >&2
  log="$(mktemp)"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get install -y -qq --no-install-recommends "$package" || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$package"; }; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    echo "$name: apt-get could not install $package" >&2
    return 1
  fi
  rm -f "$log"
}
