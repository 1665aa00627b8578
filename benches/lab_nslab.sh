#!/usr/bin/env bash
# nslab: `nslab run benches/lab.rhai --set hosts=N` / `nslab destroy lab`.
#   NSLAB         the binary (default: target/release/nslab of this checkout)
#   NSLAB_RECIPE  the recipe (default benches/lab.rhai; lab_move.rhai = walk-through style)
#   NSLAB_ARGS    extra `nslab run` arguments (e.g. --no-ipv6)
#   LAB_PER_BRIDGE  the fabric: benches/lab_fabric.rhai (lab::fabric) with that many hosts a bridge
# Usage (inside the bench sandbox): lab_nslab.sh build|teardown N
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/common.sh"
lab_require_sandbox
op=$1 n=$2
nslab=${NSLAB:-$here/../target/release/nslab}
case $op in
build)
    if [[ -n ${LAB_PER_BRIDGE:-} ]]; then
        exec "$nslab" run --lab lab ${NSLAB_ARGS:-} "$here/lab_fabric.rhai" --set "hosts=$n" --set "per_bridge=$LAB_PER_BRIDGE" > /dev/null
    fi
    exec "$nslab" run --lab lab ${NSLAB_ARGS:-} "${NSLAB_RECIPE:-$here/lab.rhai}" --set "hosts=$n" > /dev/null ;;
teardown) exec "$nslab" destroy lab > /dev/null ;;
*) echo "usage: $0 build|teardown N" >&2; exit 2 ;;
esac
