#!/usr/bin/env bash
# `nslab run benches/empty.rhai`, REPS times in one throwaway sandbox: nslab's fixed cost.
#   unshare --net --mount -- bash benches/empty.sh [REPS]
# Prints: EMPTY runs=.. median_ms=.. min_ms=.. max_ms=..
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/sandbox.sh"
source "$here/lib/common.sh"
reps=${1:-21}
nslab=${NSLAB:-$here/../target/release/nslab}
"$nslab" run "$here/empty.rhai" > /dev/null || { echo "EMPTY ok=0"; exit 1; }
ts=()
for ((i = 0; i < reps; i++)); do
    now_us; t0=$REPLY
    "$nslab" run "$here/empty.rhai" > /dev/null
    now_us; ts+=($(( REPLY - t0 )))
done
mapfile -t sorted < <(printf '%s\n' "${ts[@]}" | sort -n)
printf 'EMPTY runs=%d median_ms=%.2f min_ms=%.2f max_ms=%.2f\n' "$reps" \
    "${sorted[reps / 2]}e-3" "${sorted[0]}e-3" "${sorted[reps - 1]}e-3"
