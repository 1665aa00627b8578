#!/usr/bin/env bash
# One measured lab(N) build + teardown with one tool, in a throwaway sandbox.
#
#   unshare --net --mount -- bash benches/one.sh TOOL N [none|verify|ping]
#
# verify: check every host's state with `ip` (untimed); ping: verify + h1 pings hN.
# Prints one line:
#   RESULT tool=.. n=.. build_ms=.. build_cpu_ms=.. teardown_ms=.. settle_ms=.. ok=..
# build_ms / teardown_ms: wall time of the tool's own command, process start-up included
#   ($EPOCHREALTIME around the call). build_cpu_ms: user+sys of the tool's processes.
# settle_ms: after teardown returned, until br0 and every vI-br are really gone (0 for a
#   synchronous teardown; netns destruction itself is asynchronous in the kernel).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/sandbox.sh"
source "$here/lib/common.sh"
source "$here/lib/tools.sh"

tool=$1 n=$2 check=${3:-none}
lab_tool_cmd "$tool" "$here" || exit 2
cmd=$REPLY
ok=1 why=""
exec {sleep_fd}<> <(:)
nap() { read -r -t "$1" -u "$sleep_fd" _ || true; }

children_ticks; c0=$REPLY
now_us; t0=$REPLY
$cmd build "$n" || { ok=0; why+="build-rc "; }
now_us; t1=$REPLY
children_ticks; c1=$REPLY

if [[ $check == verify || $check == ping ]]; then
    bash "$here/lib/verify.sh" "$n" || { ok=0; why+="verify "; }
fi
if [[ $check == ping ]]; then
    lab_addr "$n"
    if out=$(ip netns exec h1 ping -c 1 -W 2 "$REPLY" 2>&1); then
        echo "PING h1 -> h$n ($REPLY): $(grep -o 'time=[0-9.]* ms' <<< "$out")" >&2
    else
        ok=0; why+="ping "; echo "$out" >&2
    fi
fi

now_us; t2=$REPLY
$cmd teardown "$n" || { ok=0; why+="teardown-rc "; }
now_us; t3=$REPLY
deadline=$(( t3 + 120000000 ))
while :; do
    lab_links_left
    (( REPLY == 0 )) && break
    now_us; (( REPLY > deadline )) && { ok=0; why+="settle-timeout "; break; }
    nap 0.002
done
now_us; t4=$REPLY
shopt -s nullglob
left=(/run/netns/* /run/nslab/lab/*)
(( ${#left[@]} == 0 )) || { ok=0; why+="left(${#left[@]}) "; }

printf 'RESULT tool=%s n=%s build_ms=%.1f build_cpu_ms=%d teardown_ms=%.1f settle_ms=%.1f ok=%s%s\n' \
    "$tool" "$n" "$(( t1 - t0 ))e-3" "$(( (c1 - c0) * 10 ))" "$(( t3 - t2 ))e-3" "$(( t4 - t3 ))e-3" \
    "$ok" "${why:+ why=${why// /,}}"
