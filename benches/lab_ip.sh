#!/usr/bin/env bash
# One `ip` process per command, like a shell script of the walk-through: 7 processes per
# host (peer created inside hI; LAB_STYLE=move: 8, veth made here then moved) + 3 for the
# bridge. Teardown: `ip netns del hI` per host + `ip link del br0`.
# Usage (inside the bench sandbox): lab_ip.sh build|teardown N
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/common.sh"
lab_require_sandbox
op=$1 n=$2
lab_setup "$n"

case $op in
build)
    for c in "${LAB_ROOT_PRE[@]}"; do ip $c; done
    for ((i = 1; i <= n; i++)); do
        lab_host_root "$i"
        for c in "${LAB_HR[@]}"; do ip $c; done
        lab_host_ns "$i"
        for c in "${LAB_HN[@]}"; do ip -n "h$i" $c; done
    done
    ;;
teardown)
    for ((i = 1; i <= n; i++)); do ip netns del "h$i"; done
    for c in "${LAB_TEARDOWN_POST[@]}"; do ip $c; done
    ;;
*) echo "usage: $0 build|teardown N" >&2; exit 2 ;;
esac
