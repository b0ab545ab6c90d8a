# faults.sh -- helpers for the fault-tolerance tests (tests/integration/
# test_fault_*.sh) and bench/soak.sh, on top of farm.sh: agents that know
# their own name in the build step's environment, kill -9 and restart of an
# agent on the same port and workdir, orphaned build processes, and a
# native recipe whose first attempt of chosen architectures sleeps.
#
#   source "$AF_SOURCE_DIR/tests/lib/farm.sh"
#   source "$AF_SOURCE_DIR/tests/lib/faults.sh"
#   af_farm_init; af_faults_init          # after af_farm_init
#   af_fault_agent_start arm-a linux/arm64 [agent flags...]
#   af_fault_recipe "$AF_TMP/ctx"         # see the recipe's comment below
#   af_agent_kill9 arm-a; af_agent_restart arm-a

declare -A AF_AGENT_FLAGS=()

# af_faults_init: at exit, kill whatever build process is still running in
# any agent's dir of this test (steps orphaned by a kill -9 of their agent).
af_faults_init() {
    af_on_exit af_kill_orphans
}

# af_build_pids [NAME]: pids of processes running inside the job dirs of
# agent NAME (default: of every agent of this test).
af_build_pids() {
    local prefix="$AF_TMP/agents/${1:-*}/work/jobs/" c pid
    for c in /proc/[0-9]*/cwd; do
        # shellcheck disable=SC2053
        if [[ $(readlink "$c" 2>/dev/null) == $prefix* ]]; then
            pid=${c#/proc/}
            echo "${pid%/cwd}"
        fi
    done
}

af_kill_orphans() {
    local p
    for p in $(af_build_pids); do kill -KILL "$p" 2>/dev/null; done
    return 0
}

# af_agent_no_build_processes NAME: true when nothing runs in NAME's job dirs.
af_agent_no_build_processes() {
    [[ -z $(af_build_pids "$1") ]]
}

# af_agent_clean NAME: no build process and no job dir on agent NAME.
af_agent_clean() {
    af_agent_no_build_processes "$1" && af_agent_no_job_dirs "$1"
}

# af_fault_agent_start NAME PLATFORM [FLAGS...]: af_agent_start, with
# AF_NODE=NAME in the agent's (hence the build step's) environment and the
# flags remembered for af_agent_restart.
af_fault_agent_start() {
    local name=$1 platform=$2
    shift 2
    # --confine off: the recipe writes marker files into the test's dir,
    # outside its job dir (test_confine.sh covers confinement)
    set -- --confine off "$@"
    AF_AGENT_FLAGS[$name]="$*"
    AF_NODE=$name af_agent_start "$name" "$platform" "$@"
}

# af_agent_kill9 NAME: SIGKILL, reaped; farm.sh no longer stops it (its
# build steps keep running, as after a real crash).
af_agent_kill9() {
    local pid=${AF_AGENT_PID[$1]:-}
    [[ -n $pid ]] || af_fail "agent $1 is not running"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    unset "AF_AGENT_PID[$1]"
    af_log "agent $1 (pid $pid) killed with SIGKILL"
}

# af_agent_restart NAME [ENV=VALUE...]: starts agent NAME again on its port
# and workdir with its flags (the inventory stays valid). Returns once it
# logs 'listening' (bounded, 20 s).
af_agent_restart() {
    local name=$1
    shift
    local dir=${AF_AGENT_DIR[$name]} port=${AF_AGENT_PORT[$name]} pid deadline
    [[ -z ${AF_AGENT_PID[$name]:-} ]] || af_fail "agent $name still runs"
    # shellcheck disable=SC2086
    env AF_NODE="$name" "$@" "$AF_BIN/archfarm-agent" --name "$name" \
        --listen "tcp://127.0.0.1:$port" --platform "${AF_AGENT_PLATFORM[$name]}" \
        --workdir "$dir/work" --insecure ${AF_AGENT_FLAGS[$name]:-} \
        >>"$dir/stdout.log" 2>"$dir/stderr.restart.log" &
    pid=$!
    AF_AGENT_PID[$name]=$pid
    deadline=$((SECONDS + 20))
    until grep -qs listening "$dir/stderr.restart.log"; do
        kill -0 "$pid" 2>/dev/null || af_fail "agent $name exited on restart:
$(tail -n 20 "$dir/stderr.restart.log")"
        ((SECONDS < deadline)) || af_fail "agent $name did not restart within 20 s"
        sleep 0.05
    done
    cat "$dir/stderr.restart.log" >>"$dir/stderr.log"
    af_log "agent $name restarted (pid $pid) on port $port"
}

# af_fault_recipe DIR: a native recipe in DIR. Build args (step environment):
#   MARKER_DIR  the step writes MARKER_DIR/started-<arch>-<node> (epoch
#               seconds) when it starts and finished-<arch>-<node> at the end
#   SLOW        space-separated arches (amd64 arm64 armv7) whose FIRST
#               attempt sleeps SLEEP seconds (default 300); later attempts
#               (failover, retry) do not sleep
#   FAIL        arches whose step exits 3 (a build failure)
#   FLAKY       arches whose first attempt exits 4, later ones succeed
#   BUILD_ID    appended to the image's /platform.txt (distinct images per build)
af_fault_recipe() {
    mkdir -p "$1"
    cat >"$1/archfarm.yaml" <<'EOF'
build:
  run: |
    set -eu
    arch="$TARGETARCH${TARGETVARIANT}"
    node="${AF_NODE:-unknown}"
    date +%s.%N > "$MARKER_DIR/started-$arch-$node"
    n=$(ls "$MARKER_DIR" | grep -c "^started-$arch-" || true)
    echo "step for $TARGETPLATFORM on $node (attempt $n)"
    case " ${FAIL:-} " in *" $arch "*) echo "failing on purpose" >&2; exit 3;; esac
    if [ "$n" -le 1 ]; then
      case " ${FLAKY:-} " in *" $arch "*) echo "flaky: first attempt fails" >&2; exit 4;; esac
      case " ${SLOW:-} " in *" $arch "*) echo "sleeping ${SLEEP:-300}s"; sleep "${SLEEP:-300}";; esac
    fi
    mkdir -p out
    echo "$TARGETPLATFORM${BUILD_ID:+ $BUILD_ID}" > out/platform.txt
    date +%s.%N > "$MARKER_DIR/finished-$arch-$node"
image:
  copy:
    - {src: out/platform.txt, dest: /platform.txt}
EOF
}

# af_started_on ARCH MARKER_DIR: the node whose step for ARCH started first
# (empty when none yet).
af_started_on() {
    local f
    f=$(ls -tr "$2" 2>/dev/null | grep "^started-$1-" | head -n 1)
    echo "${f#started-"$1"-}"
}
