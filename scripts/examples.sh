#!/usr/bin/env bash
# Generates the examples under examples/ with the pinned protoc, protoc-gen-go
# and protoc-gen-prism (built from cmd/protoc-gen-prism into .bin/): for each
# .proto, its .pb.go, the typed clients (.prism.go), the namespace config
# (.prism.yaml) and a descriptor set (.binpb, for `prism ns apply -f`).
#
#   scripts/examples.sh gen     # regenerate in place (make examples)
#   scripts/examples.sh check   # regenerate into a temp dir and diff (make examples-check)
set -euo pipefail
SCRIPT_NAME=examples.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

mode=${1:-gen}
BIN_DIR=${BIN_DIR:-$PWD/.bin}
GO=${GO:-go}
PROTOC_GEN_GO=${PROTOC_GEN_GO:-$BIN_DIR/protoc-gen-go}
[[ -x $PROTOC_GEN_GO ]] || die "$PROTOC_GEN_GO missing: run make tools"
command -v protoc >/dev/null 2>&1 || die "protoc missing: run make proto once (it installs Debian's protobuf-compiler)"
"$GO" build -o "$BIN_DIR/protoc-gen-prism" ./cmd/protoc-gen-prism

mapfile -t protos < <(find examples -type f -name '*.proto' | LC_ALL=C sort)
(( ${#protos[@]} > 0 )) || die "no .proto files under examples/"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prism-examples.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for p in "${protos[@]}"; do
  mkdir -p "$tmp/$(dirname "$p")"
  protoc -I proto -I . \
    --plugin=protoc-gen-go="$PROTOC_GEN_GO" --plugin=protoc-gen-prism="$BIN_DIR/protoc-gen-prism" \
    --go_out="$tmp" --go_opt=paths=source_relative \
    --prism_out="$tmp" --prism_opt=paths=source_relative \
    --include_imports --descriptor_set_out="$tmp/${p%.proto}.binpb" \
    "$p"
done

case $mode in
gen)
  (cd "$tmp" && find examples -type f) | while IFS= read -r f; do
    if ! cmp -s "$tmp/$f" "$f"; then cp "$tmp/$f" "$f"; log "wrote $f"; fi
  done
  log "${#protos[@]} example .proto files up to date"
  ;;
check)
  (cd "$tmp" && find examples -type f | LC_ALL=C sort) | while IFS= read -r f; do
    if ! cmp -s "$tmp/$f" "$f"; then
      diff -u --label "committed $f" --label regenerated "$f" "$tmp/$f" | head -n 40 >&2 || true
      die "generated example $f is stale: run make examples"
    fi
  done
  log "generated examples are up to date (${#protos[@]} .proto files)"
  ;;
*)
  die "usage: $0 gen|check"
  ;;
esac
