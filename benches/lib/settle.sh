# settle_kernel [FIRST_SLEEP]: waits until the kernel has finished destroying the namespaces
# of earlier sandboxes (asynchronously, on the `netns` workqueue: a busy worker shows as
# kworker/...+netns), at most 30 s, so one run's cleanup does not land in the next one's
# figures. Sourced by run.sh and mem.sh, on the host side.
settle_kernel() {
    local i c busy
    sleep "${1:-0.2}"
    for ((i = 0; i < 300; i++)); do
        busy=0
        for c in /proc/[0-9]*/comm; do
            { read -r c < "$c"; } 2> /dev/null || continue
            [[ $c == kworker*+netns* ]] && { busy=1; break; }
        done
        (( busy )) || return 0
        sleep 0.1
    done
}
