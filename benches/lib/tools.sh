# Tool table: name -> command, invoked as `CMD build N` / `CMD teardown N` inside the
# sandbox. Another tool without editing this file: LAB_CMD_<name>="command ..." and pass
# <name> to run.sh -t.
#
# The nslab tools run nslab straight from the measuring shell, as the floor is: through
# `bash lab_nslab.sh` every build and teardown also paid for starting a bash and sourcing
# lib/common.sh, 1.9 ms (100 runs of that wrapper around /bin/true: 2.8 ms against 0.9),
# which the floor, exec'd directly, did not. LAB_TOOL_EXEC=1 asks for a command an exec can
# run instead (`/usr/bin/time` in mem.sh cannot run a shell function).
lab_tool_cmd() {
    local name=$1 here=$2 var="LAB_CMD_${1//[^A-Za-z0-9_]/_}"
    if [[ -n ${!var:-} ]]; then REPLY=${!var}; return 0; fi
    LAB_HERE=$here
    case $name in
        nslab@*)      REPLY="lab_nslab_at ${name#nslab@} $here/lab.rhai -" ;;
        nslab|nslab-move|nslab-noipv6|nslab-phased)
            local recipe=$here/lab.rhai extra=-
            case $name in
                nslab-move)   recipe=$here/lab_move.rhai ;;
                nslab-phased) recipe=$here/lab_phased.rhai ;;
                nslab-noipv6) extra=--no-ipv6 ;;
            esac
            if [[ -n ${LAB_TOOL_EXEC:-} ]]; then
                local args=$extra
                [[ $args == - ]] && args=
                REPLY="env NSLAB_RECIPE=$recipe NSLAB_ARGS=$args bash $here/lab_nslab.sh"
            else
                REPLY="lab_nslab $recipe $extra"
            fi ;;
        ip)           REPLY="bash $here/lab_ip.sh" ;;
        ip-move)      REPLY="env LAB_STYLE=move bash $here/lab_ip.sh" ;;
        batch)        REPLY="bash $here/lab_batch.sh" ;;
        batch-move)   REPLY="env LAB_STYLE=move bash $here/lab_batch.sh" ;;
        floor)        REPLY="$here/floor/floor" ;;
        floor-group)  REPLY="env FLOOR_SYNC=group $here/floor/floor" ;;
        floor-host)   REPLY="env FLOOR_ORDER=host $here/floor/floor" ;;
        floor-pipe)   REPLY="env FLOOR_PIPE=1 $here/floor/floor" ;;
        floor-mq)     REPLY="env FLOOR_QUEUES=kernel $here/floor/floor" ;;
        floor-td0)    REPLY="env FLOOR_TD=plain $here/floor/floor" ;;
        nslab-floortd) REPLY="bash $here/lab_mix.sh" ;;
        floor-brlast) REPLY="env FLOOR_BRIDGE_LAST=1 $here/floor/floor" ;;
        floor-sync1)  REPLY="$here/floor/floor-sync1" ;;
        *) echo "unknown tool '$name' (set LAB_CMD_$name)" >&2; return 1 ;;
    esac
}

# lab_nslab_at BINARY RECIPE EXTRA build|teardown N: lab_nslab with another nslab binary
# (tool `nslab@PATH`: two builds side by side, e.g. `-t "nslab nslab@/tmp/nslab-old"`).
lab_nslab_at() {
    NSLAB=$1 lab_nslab "${@:2}"
}

# lab_nslab RECIPE EXTRA build|teardown N: what lab_nslab.sh does, in this shell (EXTRA is
# one `nslab run` argument, or - for none). NSLAB and LAB_PER_BRIDGE as there.
lab_nslab() {
    local recipe=$1 extra=$2 op=$3 n=$4
    local nslab=${NSLAB:-$LAB_HERE/../target/release/nslab} args=()
    [[ $extra != - ]] && args+=("$extra")
    case $op in
    build)
        if [[ -n ${LAB_PER_BRIDGE:-} ]]; then
            "$nslab" run --lab lab "${args[@]}" "$LAB_HERE/lab_fabric.rhai" --set "hosts=$n" \
                --set "per_bridge=$LAB_PER_BRIDGE" > /dev/null
        else
            "$nslab" run --lab lab "${args[@]}" "$recipe" --set "hosts=$n" > /dev/null
        fi ;;
    teardown) "$nslab" destroy lab > /dev/null ;;
    *) echo "usage: lab_nslab RECIPE EXTRA build|teardown N" >&2; return 2 ;;
    esac
}
