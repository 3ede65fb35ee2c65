# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; do not run it.

# log prints a message on stderr with the calling script's name.
log() { printf '%s: %s\n' "${SCRIPT_NAME:-${0##*/}}" "$*" >&2; }

die() { log "error: $*"; exit 1; }

# as_root runs a command as root (directly when we already are root).
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $*"
  fi
}

# apt_install PKG... installs Debian packages, refreshing the package lists
# only when the first attempt fails (a new machine may have none or stale ones).
apt_install() {
  log "installing Debian packages: $*"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; then
    log "apt-get install failed; running apt-get update and retrying"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  fi
}

# now_ms prints a monotonic-enough wall clock in milliseconds.
now_ms() { date +%s%3N; }

# wait_until TIMEOUT_SECONDS DESCRIPTION CMD... polls CMD every 0.2 s until it
# succeeds; fails with a message after the timeout.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(now_ms) + timeout * 1000 ))
  until "$@"; do
    if (( $(now_ms) >= deadline )); then
      die "$what not ready after ${timeout}s"
    fi
    sleep 0.2
  done
}

# resolve_go prints the go command to use: $GO, else go on PATH, else the
# standard install location.
resolve_go() {
  if [[ -n ${GO:-} ]]; then
    printf '%s\n' "$GO"
  elif command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    printf '%s\n' /usr/local/go/bin/go
  else
    die "go not found (set GO=/path/to/go)"
  fi
}
