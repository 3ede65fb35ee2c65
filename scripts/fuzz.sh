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

failed=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  log "fuzzing $pkg $name for $FUZZTIME"
  if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"; then
    log "FAIL: $pkg $name (a failing input is saved under testdata/fuzz/$name)"
    failed=$((failed + 1))
  fi
done
(( failed == 0 )) || die "$failed of ${#targets[@]} fuzz targets failed"
log "all ${#targets[@]} fuzz targets passed"
