#!/usr/bin/env bash
# Runs every Go fuzz target of the given packages, one after another, each
# for FUZZTIME (default 10s) in its own package.
#
#   scripts/fuzz.sh                    # all packages (./...)
#   FUZZTIME=2m scripts/fuzz.sh ./extproc/...
#   FUZZ='^FuzzDecode' scripts/fuzz.sh # only targets matching a regexp
#
# Targets are discovered with `go test -list`, so build tags and test files
# are honoured exactly as go test sees them.
set -euo pipefail
SCRIPT_NAME=fuzz.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

GO=$(resolve_go)
FUZZTIME=${FUZZTIME:-10s}
FUZZ=${FUZZ:-^Fuzz}
(( $# > 0 )) || set -- ./...

# go test -list prints the matching names of a package, then its "ok" line.
if ! list=$("$GO" test -run '^$' -list "$FUZZ" "$@"); then
  # Show what failed (build errors go to stderr already), not every listing.
  grep -Ev '^(ok|\?|Fuzz)' <<<"$list" >&2 || true
  die "could not list fuzz targets (does every package compile?)"
fi
targets=()
names=()
while IFS= read -r line; do
  case $line in
  Fuzz*) names+=("$line") ;;
  ok*)
    pkg=$(awk '{print $2}' <<<"$line")
    for n in "${names[@]}"; do targets+=("$pkg $n"); done
    names=()
    ;;
  *) names=() ;;
  esac
done <<<"$list"

if (( ${#targets[@]} == 0 )); then
  log "no fuzz targets matching $FUZZ in $*"
  exit 0
fi
log "${#targets[@]} fuzz targets, $FUZZTIME each"

# fuzz_once PKG NAME: one fuzzing run; its output is kept in $out.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fuzz_once() {
  "$GO" test -run '^$' -fuzz "^${2}\$" -fuzztime "$FUZZTIME" "$1" 2>&1 | tee "$out"
  return "${PIPESTATUS[0]}"
}

# deadline_flake: the run failed only with Go's fuzz coordinator race at
# the end of -fuzztime (go.dev/issue/75804, fixed in Go 1.27): a bare
# "context deadline exceeded" and no failing input written.
deadline_flake() {
  grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"
}

failed=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  log "fuzzing $pkg $name for $FUZZTIME"
  if fuzz_once "$pkg" "$name"; then
    continue
  fi
  if deadline_flake; then
    log "$pkg $name stopped on the fuzz coordinator's deadline race (go.dev/issue/75804), nothing found; fuzzing it again"
    if fuzz_once "$pkg" "$name"; then
      continue
    fi
    if deadline_flake && "$GO" test -run "^${name}\$" "$pkg" >/dev/null; then
      log "$pkg $name: the deadline race again, and the corpus replays clean; not a finding"
      continue
    fi
  fi
  log "FAIL: $pkg $name (a failing input is saved under testdata/fuzz/$name)"
  failed=$((failed + 1))
done
(( failed == 0 )) || die "$failed of ${#targets[@]} fuzz targets failed"
log "all ${#targets[@]} fuzz targets passed"
