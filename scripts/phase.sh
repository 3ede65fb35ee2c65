#!/usr/bin/env bash
# phase.sh NAME CMD...: runs CMD under a banner and reports how long it took.
set -uo pipefail
name=$1; shift
start=$(date +%s%3N)
printf '\n==> %s\n' "$name"
"$@"
rc=$?
ms=$(( $(date +%s%3N) - start ))
if (( rc == 0 )); then
  printf '<== %s: ok in %d.%01ds\n' "$name" $((ms / 1000)) $((ms % 1000 / 100))
else
  printf '<== %s: FAILED (exit %d) after %d.%01ds\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000 / 100))
fi
exit "$rc"
