#!/usr/bin/env bash
# Memory of lab(N): what the kernel keeps per host, and the tool's own peak RSS.
#
#   bash benches/mem.sh [-t "TOOLS"] [-r REPS] [-s SETTLE_SECONDS] N...
#
# Defaults: TOOLS="nslab floor", REPS=1, SETTLE=5, N=1000. For each N, tool and rep, in
# its own throwaway sandbox (benches/lib/sandbox.sh, as run.sh does): wait until the
# kernel is quiet, read /proc/meminfo (Slab, SUnreclaim, Percpu), build lab(N) under
# /usr/bin/time (peak RSS of the build command: for nslab its one process), wait SETTLE
# seconds (IPv6 autoconfiguration, DAD and MLD timers run for a few seconds after the last
# host comes up), read /proc/meminfo again, tear down. Prints one MEM line per build:
#
#   MEM tool=nslab n=1000 slab_kb=.. sunreclaim_kb=.. percpu_kb=.. per_host_kb=.. rss_kb=..
#
# per_host_kb = (Slab + Percpu after - before) / N. /proc/meminfo is the machine's: other
# work running meanwhile moves it too (a compile's dentries), so take several reps on a
# quiet machine and read the medians. Needs root.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ ${1:-} == --inner ]]; then
    shift
    tool=$1 n=$2 settle=$3
    source "$here/lib/sandbox.sh"
    source "$here/lib/common.sh"
    source "$here/lib/tools.sh"
    # /usr/bin/time runs the tool itself: a command line, not a shell function.
    LAB_TOOL_EXEC=1 lab_tool_cmd "$tool" "$here" || exit 2
    cmd=$REPLY
    meminfo() { # -> REPLY="slab sunreclaim percpu" (kB)
        local k v u slab=0 sun=0 pcpu=0
        while read -r k v u; do
            case $k in Slab:) slab=$v ;; SUnreclaim:) sun=$v ;; Percpu:) pcpu=$v ;; esac
        done < /proc/meminfo
        REPLY="$slab $sun $pcpu"
    }
    meminfo; read -r s0 u0 p0 <<< "$REPLY"
    rss=$( { /usr/bin/time -f 'RSS %M' $cmd build "$n" > /dev/null; } 2>&1 | sed -n 's/^RSS //p' | tail -1)
    sleep "$settle"
    meminfo; read -r s1 u1 p1 <<< "$REPLY"
    $cmd teardown "$n" > /dev/null 2>&1
    printf 'MEM tool=%s n=%s slab_kb=%d sunreclaim_kb=%d percpu_kb=%d per_host_kb=%.1f rss_kb=%s\n' \
        "$tool" "$n" $((s1 - s0)) $((u1 - u0)) $((p1 - p0)) "$(( (s1 - s0 + p1 - p0) * 10 / n ))e-1" "${rss:-?}"
    exit 0
fi
tools="nslab floor" reps=1 settle=5
while getopts "t:r:s:" o; do
    case $o in
        t) tools=$OPTARG ;; r) reps=$OPTARG ;; s) settle=$OPTARG ;;
        *) sed -n '2,22p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
ns=("$@")
(( ${#ns[@]} )) || ns=(1000)
[[ $(id -u) == 0 ]] || { echo "mem.sh needs root (it makes network namespaces, in sandboxes)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "mem.sh needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
if [[ " $tools " == *" nslab"* && -z ${NSLAB:-} ]]; then
    (cd "$here/.." && cargo build --release --quiet) || exit 1
fi
[[ " $tools " == *" floor"* ]] && { make -C "$here/floor" -s || exit 1; }
source "$here/lib/settle.sh"
read -r -a tl <<< "$tools"
echo "# $(date -u +%FT%TZ) kernel=$(uname -r) cpus=$(nproc) nslab $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null) settle=${settle}s"
for n in "${ns[@]}"; do
    for ((r = 1; r <= reps; r++)); do
        for t in "${tl[@]}"; do
            settle_kernel 1
            unshare --net --mount -- bash "$0" --inner "$t" "$n" "$settle"
        done
    done
done
