# engines.sh -- helpers for tests of the Dockerfile (engine) executors, on
# top of farm.sh (source farm.sh first).
#
#   af_engines_require                 fails unless buildah, skopeo, jq, the
#                                      cross compilers and qemu-user exist
#   af_engines_inventory FILE NAME...  an inventory with only those agents
#                                      (AF_INVENTORY is left as it was)
#   af_engines_pids NAME               pids of the engine processes agent NAME
#                                      runs now (whole process groups)
#   af_engines_pid_gone PID            true once PID is gone (or a zombie)
#   af_engines_assert_clean WHAT       no engine process, no mount and no
#                                      container storage left by any agent

af_engines_require() {
    local t
    for t in buildah skopeo jq gcc aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc \
        qemu-aarch64-static qemu-arm-static; do
        command -v "$t" >/dev/null 2>&1 || af_fail "$t is not installed (see tests/lib/deps.sh)"
    done
}

af_engines_inventory() {
    local file=$1 saved_inv=${AF_INVENTORY:-} h n keep
    shift
    local saved=("${AF_INV_HOSTS[@]}")
    AF_INV_HOSTS=()
    for h in "${saved[@]}"; do
        keep=0
        for n in "$@"; do
            [[ $h == "$n|"* ]] && keep=1
        done
        ((keep)) && AF_INV_HOSTS+=("$h")
    done
    af_inventory_write "$file"
    AF_INV_HOSTS=("${saved[@]}")
    AF_INVENTORY=$saved_inv
    export AF_INVENTORY
}

# Process groups whose leader's command line names agent NAME's workdir
# (buildah is started with --root inside the job dir), then every member.
af_engines_pids() {
    local dir=${AF_AGENT_DIR[$1]}/work c pid pgids=() g
    for c in /proc/[0-9]*/cmdline; do
        pid=${c#/proc/}
        pid=${pid%/cmdline}
        if tr '\0' ' ' <"$c" 2>/dev/null | grep -q -- "--root $dir/"; then
            g=$(awk '{print $5}' "/proc/$pid/stat" 2>/dev/null) || continue
            pgids+=("$g")
        fi
    done
    ((${#pgids[@]})) || return 0
    for g in $(printf '%s\n' "${pgids[@]}" | sort -u); do
        ps -eo pid=,pgid= | awk -v g="$g" '$2 == g {print $1}'
    done | sort -un
}

af_engines_pid_gone() {
    local st
    [[ -e /proc/$1 ]] || return 0
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
    [[ $st == Z ]]
}

af_engines_assert_clean() {
    local what=$1 c pid args left=""
    for c in /proc/[0-9]*/cmdline; do
        pid=${c#/proc/}
        pid=${pid%/cmdline}
        args=$(tr '\0' ' ' <"$c" 2>/dev/null) || continue
        [[ $args == *"$AF_TMP/agents/"* ]] || continue
        [[ $args == *archfarm-agent* ]] && continue
        left+="$pid: $args"$'\n'
    done
    [[ -z $left ]] || af_fail "$what: engine processes left behind:
$left"
    printf 'ok: %s: no engine process left\n' "$what" >&2
    if grep -q -- "$AF_TMP/agents" /proc/self/mountinfo; then
        af_fail "$what: mounts left behind: $(grep -- "$AF_TMP/agents" /proc/self/mountinfo)"
    fi
    printf 'ok: %s: no mount left\n' "$what" >&2
    local storage
    storage=$(find "$AF_TMP/agents" \( -name 'vfs-layers' -o -name 'overlay-layers' -o \
        -path '*/jobs/*/buildah' \) 2>/dev/null)
    [[ -z $storage ]] || af_fail "$what: container storage left behind: $storage"
    printf 'ok: %s: no container storage left\n' "$what" >&2
}
