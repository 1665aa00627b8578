#!/usr/bin/env bash
# iproute2 batch mode: the same command lines as lab_ip.sh fed to `ip -batch`: the root
# netns lines in one batch, and per host `netns exec hI ip -batch FILE` inside it (a batch
# line cannot switch netns: `-n hI` per line is rejected), so 1 + N ip processes.
# Teardown: one batch of `netns del hI` lines + `link del br0`.
# Usage (inside the bench sandbox): lab_batch.sh build|teardown N
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/common.sh"
lab_require_sandbox
op=$1 n=$2
lab_setup "$n"
dir=$(mktemp -d /tmp/labbatch.XXXXXX)
trap 'rm -rf "$dir"' EXIT

case $op in
build)
    {
        printf '%s\n' "${LAB_ROOT_PRE[@]}"
        for ((i = 1; i <= n; i++)); do
            lab_host_root "$i"
            printf '%s\n' "${LAB_HR[@]}"
            lab_host_ns "$i"
            printf '%s\n' "${LAB_HN[@]}" > "$dir/h$i"
            echo "netns exec h$i ip -batch $dir/h$i"
        done
    } > "$dir/root"
    ip -batch "$dir/root"
    ;;
teardown)
    {
        for ((i = 1; i <= n; i++)); do echo "netns del h$i"; done
        printf '%s\n' "${LAB_TEARDOWN_POST[@]}"
    } > "$dir/root"
    ip -batch "$dir/root"
    ;;
*) echo "usage: $0 build|teardown N" >&2; exit 2 ;;
esac
