#!/usr/bin/env bash
# The lab(N) benchmark: nslab against a shell script of `ip` commands and against
# `ip -batch`, each run in its own throwaway sandbox. Run as root from anywhere:
#
#   bash benches/run.sh [-r REPS] [-t "TOOLS"] [-o OUTFILE] [N...]
#
# Defaults: REPS=5, TOOLS="nslab ip batch", N = 10 50 200 500.
# Tools (benches/lib/tools.sh): nslab, nslab-move (walk-through style recipe),
#   nslab-noipv6 (nslab run --no-ipv6), ip (one ip process per command, peer made inside
#   the netns), ip-move (tutorial style: veth moved), batch (ip -batch, peer inside the
#   netns), batch-move, floor / floor-group / floor-sync1 / floor-mq / floor-pipe (the C
#   floor, needs cc; floor-mq: veth ends with the kernel's default queue count; floor-pipe:
#   netns made on a second thread, each veth as soon as its netns is there; floor-td0: the
#   teardown without bringing br0 down first), nslab-floortd (built by nslab, torn down the
#   floor's way), nslab@PATH (the nslab binary at PATH, to set two builds side by side).
# With nslab among the tools, `nslab run benches/empty.rhai` is timed first (21 runs).
# For each N every tool first does one untimed check run (full state check with `ip` and
# a ping from h1 to hN), then REPS timed runs, interleaved, the order rotated every
# repetition so machine drift hits all tools alike. Raw lines go to OUTFILE (default
# benches/results/lab-<UTC time>.txt); the summary (medians, ratios nslab/other) to stdout.
# Needs: root, iproute2, iputils-ping, python3, cargo (builds target/release/nslab).
# It is a benchmark, not a test: nothing fails on timings.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
reps=5
tools="nslab ip batch"
out=""
while getopts "r:t:o:" o; do
    case $o in
        r) reps=$OPTARG ;; t) tools=$OPTARG ;; o) out=$OPTARG ;;
        *) sed -n '2,20p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
ns=("$@")
(( ${#ns[@]} )) || ns=(10 50 200 500)
[[ $(id -u) == 0 ]] || { echo "run.sh needs root (it makes network namespaces, in sandboxes)" >&2; exit 1; }
read -r -a tl <<< "$tools"

if [[ " $tools " == *" nslab"* && -z ${NSLAB:-} ]]; then
    (cd "$here/.." && cargo build --release --quiet) || { echo "cargo build --release failed" >&2; exit 1; }
fi
if [[ " $tools " == *" floor"* ]]; then
    make -C "$here/floor" -s || { echo "cannot build benches/floor; drop floor* from -t" >&2; exit 1; }
fi
mkdir -p "$here/results"
out=${out:-$here/results/lab-$(date -u +%Y%m%dT%H%M%SZ).txt}
{
    echo "# $(date -u +%FT%TZ) host=$(uname -n) kernel=$(uname -r) cpus=$(nproc) $(ip -V)"
    echo "# nslab $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null)$(git -C "$here/.." diff --quiet 2>/dev/null || echo +dirty)"
    echo "# reps=$reps tools=$tools Ns=${ns[*]}"
} >> "$out"

source "$here/lib/settle.sh"

one() { # tool n rep check
    local line
    line=$(unshare --net --mount -- bash "$here/one.sh" "$1" "$2" "$4" 2> >(sed "s|^|[$1 n=$2] |" >&2))
    [[ $line == RESULT* ]] || line="RESULT tool=$1 n=$2 ok=0 why=no-result"
    echo "${line/RESULT /RESULT rep=$3 }" >> "$out"
    echo "${line/RESULT /RESULT rep=$3 }" >&2
    settle_kernel
}

if [[ " $tools " == *" nslab "* ]]; then
    line=$(unshare --net --mount -- bash "$here/empty.sh" 21)
    echo "$line" | tee -a "$out" >&2
fi

for n in "${ns[@]}"; do
    for t in "${tl[@]}"; do one "$t" "$n" 0 ping; done
    for ((r = 1; r <= reps; r++)); do
        k=${#tl[@]}
        for ((j = 0; j < k; j++)); do
            one "${tl[$(( (j + r) % k ))]}" "$n" "$r" none
        done
    done
done
echo "raw results: $out" >&2
python3 "$here/summarize.py" "$out"
