#!/usr/bin/env bash
# Makes sure headless Chromium is installed for the admin UI's browser tests
# (Debian package "chromium", driven by chromedp from the Go tests).
# Idempotent: when it is installed this only prints its version. The tests
# find it through PRISM_CHROMIUM, else chromium on PATH.
set -euo pipefail
SCRIPT_NAME=browser.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

find_chromium() { command -v chromium || command -v chromium-browser || true; }

bin=$(find_chromium)
if [[ -z $bin ]]; then
  start=$(now_ms)
  apt_install chromium
  bin=$(find_chromium)
  [[ -n $bin ]] || die "chromium is not on PATH after installing the Debian package"
  log "installed chromium in $(( $(now_ms) - start )) ms"
fi
printf '  %-10s %s\n' chromium "$("$bin" --version 2>/dev/null || echo "$bin")"
