#!/usr/bin/env bash
# Checks (untimed, with `ip` as independent eyes) that lab(N) is fully built in the
# current sandbox: br0 up with 10.0.0.1/16 and N UP ports, N netns, and in every hI the
# address, lo and vI up, the default route.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"
lab_require_sandbox
n=$1 bad=0
err() { echo "VERIFY: $*" >&2; bad=1; }

ip -o -4 addr show dev br0 | grep -q ' 10.0.0.1/16 ' || err "br0 address"
ip -o link show dev br0 | grep -q 'state UP\|,UP' || err "br0 not up"
# Host ports (vI-br) up on the lab's bridges: br0, and with LAB_PER_BRIDGE br1..brK too.
# A port's operstate follows its carrier through the kernel's linkwatch, up to a second
# later under load: a lab whose last hosts came up at the very end (the floor's order,
# benches/lab_phased.rhai) is given 3 s.
lab_bridges "$n"
nbr=$REPLY
for ((try = 0; try < 30; try++)); do
    ports=0
    for ((k = 0; k < nbr; k++)); do
        p=$(ip -o link show master "br$k" | grep 'state UP' | grep -c ': v[0-9]*-br@')
        ports=$((ports + p))
    done
    (( ports == n )) && break
    sleep 0.1
done
(( ports == n )) || err "the bridges have $ports UP host ports, want $n"
nns=$(ip netns list | grep -c '^h[0-9]')
(( nns == n )) || err "$nns netns hI, want $n"
for ((i = 1; i <= n; i++)); do
    lab_addr "$i"; a=$REPLY
    out=$(ip -n "h$i" -o -4 addr show 2>&1; ip -n "h$i" -o link show 2>&1; ip -n "h$i" route show default 2>&1)
    grep -q "v$i .*inet $a/16 " <<< "$out" || err "h$i: v$i address"
    grep -q "lo: <LOOPBACK,UP" <<< "$out" || err "h$i: lo not up"
    grep -q "v$i@[^:]*: <.*,UP" <<< "$out" || err "h$i: v$i not up"
    grep -q "^default via 10.0.0.1 dev v$i" <<< "$out" || err "h$i: default route"
    (( bad )) && break
done
(( bad == 0 )) && echo "VERIFY ok: lab($n)" >&2
exit $bad
