# Helpers shared by the adapters and benches/one.sh. Hot-path helpers set REPLY instead of
# printing, so callers need no command substitution (which would fork and skew timings).

# Address of host i (1-based): 10.0.(i/250).(i%250+2), as in benches/lab.rhai.
lab_addr() { REPLY="10.0.$(( $1 / 250 )).$(( $1 % 250 + 2 ))"; }

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
        [[ $name == br0 || $name == v*-br ]] && n=$((n + 1))
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
    local i=$1
    if [[ ${LAB_STYLE:-direct} == move ]]; then
        LAB_HR=(
            "netns add h$i"
            "link add v$i-br type veth peer name v$i"
            "link set v$i netns h$i"
            "link set v$i-br master br0"
            "link set v$i-br up"
        )
    else
        LAB_HR=(
            "netns add h$i"
            "link add v$i-br type veth peer name v$i netns h$i"
            "link set v$i-br master br0"
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
