#!/usr/bin/env bash
# links(N): `link::add` of N vxlan or macvlan links by nslab against the same links made by
# one `ip -batch` (with the same owner tag: group at creation, alias after), side by side
# in one run, each build in its own fresh sandbox (`nslab sandbox`), interleaved.
#
#   bash benches/links.sh [-n N] [-r REPS] [KIND...]      # as root; default N=200 REPS=5 KIND=vxlan macvlan
#
# Prints one RESULT line per build and, per kind, the medians and the ratio nslab/batch.
# build_ms: wall time of the tool's own command, process start-up included.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
n=200 reps=5
while getopts "n:r:" o; do
    case $o in n) n=$OPTARG ;; r) reps=$OPTARG ;; *) sed -n '2,10p' "$0"; exit 2 ;; esac
done
shift $((OPTIND - 1))
kinds=("$@")
(( ${#kinds[@]} )) || kinds=(vxlan macvlan)
[[ $(id -u) == 0 ]] || { echo "links.sh needs root (it makes links, in sandboxes)" >&2; exit 1; }
(cd "$here/.." && cargo build --release --quiet) || exit 1
nslab=$(cd "$here/.." && pwd)/target/release/nslab

# One build inside a fresh sandbox; prints the wall time in ms and checks the link count.
one() { # tool kind
    local tool=$1 kind=$2
    "$nslab" sandbox -- bash -c '
        set -e
        tool=$1 kind=$2 n=$3 nslab=$4 here=$5
        group=4242
        if [[ $tool == batch ]]; then
            {
                [[ $kind == macvlan ]] && echo "link add parent0 group $group type veth peer name peer0 group $group" &&
                    echo "link set parent0 alias nslab:lab" && echo "link set peer0 alias nslab:lab"
                for ((i = 1; i <= n; i++)); do
                    if [[ $kind == vxlan ]]; then
                        echo "link add vx$i group $group type vxlan id $i remote 10.0.0.2 dstport 4789"
                        echo "link set vx$i alias nslab:lab"
                    else
                        echo "link add link parent0 name mv$i group $group type macvlan mode bridge"
                        echo "link set mv$i alias nslab:lab"
                    fi
                done
            } > /tmp/links.batch
            t0=$EPOCHREALTIME
            ip -batch /tmp/links.batch
            t1=$EPOCHREALTIME
        else
            t0=$EPOCHREALTIME
            "$nslab" run --lab lab "$here/links.rhai" --set n=$n --set kind=$kind > /dev/null
            t1=$EPOCHREALTIME
        fi
        count=$(ip -o link | grep -c -e " vx[0-9]*:" -e " mv[0-9]*@" || true)
        [[ $count == "$n" ]] || { echo "expected $n links, found $count" >&2; exit 1; }
        echo $(( (${t1/./} - ${t0/./}) / 1000 ))
    ' _ "$tool" "$kind" "$n" "$nslab" "$here"
}

echo "# $(date -u +%FT%TZ) kernel=$(uname -r) cpus=$(nproc) n=$n reps=$reps $(ip -V)"
for kind in "${kinds[@]}"; do
    declare -A ms=()
    for ((r = 1; r <= reps; r++)); do
        for tool in nslab batch; do
            [[ $(( r % 2 )) == 0 ]] && tool=$([[ $tool == nslab ]] && echo batch || echo nslab)
            t=$(one "$tool" "$kind") || { echo "RESULT kind=$kind tool=$tool rep=$r ok=0"; continue; }
            echo "RESULT kind=$kind tool=$tool rep=$r n=$n build_ms=$t"
            ms[$tool]+="$t "
        done
    done
    med() { tr ' ' '\n' <<< "$1" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
    a=$(med "${ms[nslab]}") b=$(med "${ms[batch]}")
    echo "SUMMARY kind=$kind n=$n nslab_ms=$a batch_ms=$b ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}')"
    unset ms
done
