#!/usr/bin/env bash
# Installs the pinned Go tools into the project-local bin dir (.bin/ by
# default), each only when it is missing, is another version, or was built by
# another Go toolchain than the one in use. Never takes tools from PATH.
#
#   scripts/tools.sh                 # all tools
#   BIN_DIR=/some/dir scripts/tools.sh
#
# Versions are pinned here and nowhere else (the Makefile passes them through).
set -euo pipefail
SCRIPT_NAME=tools.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

GO=$(resolve_go)
BIN_DIR=${BIN_DIR:-$PWD/.bin}
PROTOC_GEN_GO_VERSION=${PROTOC_GEN_GO_VERSION:-v1.36.12}
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}

mkdir -p "$BIN_DIR"
go_version=$("$GO" env GOVERSION)

# ensure_tool BINARY PACKAGE MODULE VERSION
ensure_tool() {
  local bin=$1 pkg=$2 mod=$3 ver=$4 path=$BIN_DIR/$1
  if [[ -x $path ]]; then
    local info built have
    info=$("$GO" version -m "$path" 2>/dev/null || true)
    built=$(awk 'NR==1 {print $2}' <<<"$info")
    have=$(awk -v m="$mod" '$1=="mod" && $2==m {print $3}' <<<"$info")
    if [[ $have == "$ver" && $built == "$go_version" ]]; then
      return 0
    fi
    log "$bin: have ${have:-unknown} built with ${built:-unknown}, want $ver built with $go_version"
  fi
  local start; start=$(now_ms)
  # Run outside the project's module and flags so go.mod cannot affect the pin.
  (cd / && GOBIN=$BIN_DIR GOFLAGS= "$GO" install "$pkg@$ver")
  log "$bin: installed $pkg@$ver in $(( $(now_ms) - start )) ms"
}

ensure_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/protobuf "$PROTOC_GEN_GO_VERSION"
ensure_tool staticcheck honnef.co/go/tools/cmd/staticcheck honnef.co/go/tools "$STATICCHECK_VERSION"

# kcat is the independent Kafka client the kafka driver's test reads with.
if ! command -v kcat >/dev/null 2>&1; then
  apt_install kcat
fi
