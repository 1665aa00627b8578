# Sourced by benches/one.sh: makes the current process a throwaway sandbox and REFUSES to
# run in the host's own network or mount namespace, so a mistaken direct invocation cannot
# create bridges, namespaces or routes on the host.
#
# Expected invocation:  unshare --net --mount -- bash benches/one.sh ...
# After sourcing: mounts are private (nothing propagates to the host), /run/netns and
# /run/nslab are private tmpfs (netns files and lab journals live only there), lo is up.

bench_sandbox_guard() {
    # Reference = the host's namespaces: PID 1's if readable, else our parent's (unshare
    # execs us, so our parent is the shell that ran unshare, in the host namespaces).
    local ref=/proc/1
    [[ -r /proc/1/ns/net ]] && readlink /proc/1/ns/net > /dev/null 2>&1 || ref=/proc/$PPID
    if [[ /proc/self/ns/net -ef $ref/ns/net || /proc/self/ns/mnt -ef $ref/ns/mnt ]]; then
        echo "refusing to run: not inside a private net+mount namespace." >&2
        echo "run me as: unshare --net --mount -- bash $0 ..." >&2
        return 1
    fi
}

bench_sandbox_guard || exit 97
mount --make-rprivate / || exit 97
for d in /run/netns /run/nslab; do
    mkdir -p "$d" && mount -t tmpfs -o mode=0755 none "$d" || exit 97
done
ip link set lo up || exit 97
# Adapters check they run in THIS sandbox (lab_require_sandbox).
export BENCH_SANDBOX_PID=$$
