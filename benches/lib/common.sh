# Helpers shared by the adapters and benches/one.sh. Hot-path helpers set REPLY instead of
# printing, so callers need no command substitution (which would fork and skew timings).

# Address of host i (1-based): 10.0.(i/250).(i%250+2), as in benches/lab.rhai; with
# LAB_PER_BRIDGE (the fabric, lab::fabric) the (i+1)th address of 10.0.0.0/16.
lab_addr() {
    if [[ -n ${LAB_PER_BRIDGE:-} ]]; then
        REPLY="10.0.$(( ($1 + 1) / 256 )).$(( ($1 + 1) % 256 ))"
    else
        REPLY="10.0.$(( $1 / 250 )).$(( $1 % 250 + 2 ))"
    fi
}

# Wall clock in microseconds into REPLY (bash 5 builtin, no fork).
now_us() { REPLY=${EPOCHREALTIME/[.,]/}; }

# CPU (user+sys) of all reaped children of this shell, in clock ticks, into REPLY
# (fields 16 cutime and 17 cstime of /proc/self/stat, read without forking).
children_ticks() {
    local line rest
    read -r line < /proc/self/stat
    rest=${line##*) }
    local -a f=($rest)
    REPLY=$(( f[13] + f[14] ))
}

# Number of lab links (br0 and v*-br) still in the current netns, into REPLY.
lab_links_left() {
    local -a lines
    local n=0 l name
    mapfile -t lines < /proc/net/dev
    for l in "${lines[@]:2}"; do
        name=${l%%:*}; name=${name// /}
        [[ $name == br[0-9]* || $name == v*-br || $name == t[0-9]*-[ab] ]] && n=$((n + 1))
    done
    REPLY=$n
}

# Refuse to touch networking unless we run inside the sandbox made by lib/sandbox.sh.
lab_require_sandbox() {
    if [[ -z ${BENCH_SANDBOX_PID:-} || ! /proc/self/ns/net -ef /proc/$BENCH_SANDBOX_PID/ns/net ]]; then
        echo "refusing to run outside the bench sandbox; use: bash benches/run.sh" >&2
        exit 97
    fi
}

# lab(N) as iproute2 command lines (without the leading "ip"), one per recipe call of
# benches/lab.rhai, so every tool issues the same operations:
#   LAB_ROOT_PRE      once, in the sandbox root netns
#   lab_host_root I   per host, in the root netns    -> array LAB_HR
#   lab_host_ns I     per host, inside netns hI       -> array LAB_HN
#   LAB_TEARDOWN_POST once, after all `netns del`
# LAB_STYLE=direct (default): the veth peer is created inside hI, like
#   veth::add("vI-br", "vI", "hI") in benches/lab.rhai.
# LAB_STYLE=move: the walk-through's style, veth made in the root netns and then moved
#   ("link set vI netns hI"), like benches/lab_move.rhai. The kernel takes 16-23 ms per move.
LAB_ROOT_PRE=(
    "link add br0 type bridge"
    "link set br0 up"
    "addr add 10.0.0.1/16 dev br0"
)
lab_host_root() {
    local i=$1 br
    lab_bridge_of "$i"; br=$REPLY
    if [[ ${LAB_STYLE:-direct} == move ]]; then
        LAB_HR=(
            "netns add h$i"
            "link add v$i-br type veth peer name v$i"
            "link set v$i netns h$i"
            "link set v$i-br master $br"
            "link set v$i-br up"
        )
    else
        LAB_HR=(
            "netns add h$i"
            "link add v$i-br type veth peer name v$i netns h$i"
            "link set v$i-br master $br"
            "link set v$i-br up"
        )
    fi
}
lab_host_ns() {
    local i=$1
    lab_addr "$i"
    LAB_HN=(
        "addr add $REPLY/16 dev v$i"
        "link set v$i up"
        "link set lo up"
        "route add default via 10.0.0.1"
    )
}
LAB_TEARDOWN_POST=("link del br0")

# The fabric (LAB_PER_BRIDGE=P, what lab::fabric builds): hosts spread over bridges br0..brK
# of at most P hosts each (a bridge holds at most 1023 ports), every brK (K > 0) joined to
# br0 by a veth trunk tK-a/tK-b; one subnet 10.0.0.0/16. Adapters call `lab_setup N` first.
lab_bridges() {
    if [[ -n ${LAB_PER_BRIDGE:-} ]]; then REPLY=$(( ($1 + LAB_PER_BRIDGE - 1) / LAB_PER_BRIDGE )); else REPLY=1; fi
}
lab_setup() {
    [[ -n ${LAB_PER_BRIDGE:-} ]] || return 0
    local n=$1 k b
    lab_bridges "$n"; b=$REPLY
    LAB_ROOT_PRE=()
    LAB_TEARDOWN_POST=()
    for ((k = 0; k < b; k++)); do
        LAB_ROOT_PRE+=("link add br$k type bridge" "link set br$k up")
        if ((k == 0)); then
            LAB_ROOT_PRE+=("addr add 10.0.0.1/16 dev br0")
        else
            LAB_ROOT_PRE+=(
                "link add t$k-a type veth peer name t$k-b"
                "link set t$k-a master br0"
                "link set t$k-b master br$k"
                "link set t$k-a up"
                "link set t$k-b up"
            )
            LAB_TEARDOWN_POST+=("link del t$k-a")
        fi
        LAB_TEARDOWN_POST+=("link del br$k")
    done
}
# The bridge host i is plugged into.
lab_bridge_of() {
    if [[ -n ${LAB_PER_BRIDGE:-} ]]; then REPLY=br$(( ($1 - 1) / LAB_PER_BRIDGE )); else REPLY=br0; fi
}
