#!/usr/bin/env bash
# nslab-floortd: builds lab(N) with nslab and tears it down the floor's way (unmount every
# hI, delete br0, return), so nslab's destroy and the floor's teardown can be compared on
# the same state. Usage (inside the bench sandbox): lab_mix.sh build|teardown N
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/common.sh"
lab_require_sandbox
case $1 in
build) exec bash "$here/lab_nslab.sh" build "$2" ;;
teardown) "$here/floor/floor" teardown "$2"; rm -rf /run/nslab/lab ;;
*) echo "usage: $0 build|teardown N" >&2; exit 2 ;;
esac
