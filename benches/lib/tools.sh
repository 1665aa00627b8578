# Tool table: name -> command, invoked as `CMD build N` / `CMD teardown N` inside the
# sandbox. Another tool without editing this file: LAB_CMD_<name>="command ..." and pass
# <name> to run.sh -t.
lab_tool_cmd() {
    local name=$1 here=$2 var="LAB_CMD_${1//-/_}"
    if [[ -n ${!var:-} ]]; then REPLY=${!var}; return 0; fi
    case $name in
        nslab)        REPLY="bash $here/lab_nslab.sh" ;;
        nslab-move)   REPLY="env NSLAB_RECIPE=$here/lab_move.rhai bash $here/lab_nslab.sh" ;;
        nslab-noipv6) REPLY="env NSLAB_ARGS=--no-ipv6 bash $here/lab_nslab.sh" ;;
        ip)           REPLY="bash $here/lab_ip.sh" ;;
        ip-move)      REPLY="env LAB_STYLE=move bash $here/lab_ip.sh" ;;
        batch)        REPLY="bash $here/lab_batch.sh" ;;
        batch-move)   REPLY="env LAB_STYLE=move bash $here/lab_batch.sh" ;;
        floor)        REPLY="$here/floor/floor" ;;
        floor-group)  REPLY="env FLOOR_SYNC=group $here/floor/floor" ;;
        floor-host)   REPLY="env FLOOR_ORDER=host $here/floor/floor" ;;
        floor-pipe)   REPLY="env FLOOR_PIPE=1 $here/floor/floor" ;;
        floor-mq)     REPLY="env FLOOR_QUEUES=kernel $here/floor/floor" ;;
        nslab-floortd) REPLY="bash $here/lab_mix.sh" ;;
        floor-brlast) REPLY="env FLOOR_BRIDGE_LAST=1 $here/floor/floor" ;;
        nslab-phased) REPLY="env NSLAB_RECIPE=$here/lab_phased.rhai bash $here/lab_nslab.sh" ;;
        floor-sync1)  REPLY="$here/floor/floor-sync1" ;;
        *) echo "unknown tool '$name' (set LAB_CMD_$name)" >&2; return 1 ;;
    esac
}
