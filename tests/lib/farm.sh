# farm.sh -- a throw-away local farm for integration tests, the demo and the
# benchmarks: a temp dir, a registry, N agents on free loopback ports, an
# inventory naming them, and assertions. Everything started here is stopped
# by one EXIT trap, on success and on failure alike.
#
# Usage (in a `set -euo pipefail` bash script):
#   source "$AF_SOURCE_DIR/tests/lib/farm.sh"
#   af_farm_init                         # temp dir $AF_TMP, EXIT trap, checks AF_BIN
#   af_farm_registry_start               # exports AF_REGISTRY=127.0.0.1:PORT
#   af_agent_start amd64 linux/amd64     # name, platform, [extra agent flags...]
#   af_inventory_write "$AF_TMP/inv.yaml"
#   af_archfarm build ...                # the coordinator with -i $AF_INVENTORY
#
# Environment:
#   AF_BIN         dir holding archfarm and archfarm-agent (default build/bin)
#   AF_SOURCE_DIR  repo root (default: two levels above this file)
#   AF_KEEP_TMP=1  keep the temp dir (logs, registry storage) for debugging
#   AF_TIMEOUT     seconds a single coordinator run may take (default 300)
#   AF_TEST_TIMEOUT  seconds the whole test may take (default 540), then it
#                  is stopped through its EXIT trap
#
# An agent that exits non-zero when stopped (crash, sanitizer report, leak)
# fails the test: under ASan/UBSan this is how agent bugs surface.

AF_SOURCE_DIR=${AF_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
source "$AF_SOURCE_DIR/tests/lib/timing.sh"
AF_BIN=${AF_BIN:-$AF_SOURCE_DIR/build/bin}
AF_TIMEOUT=${AF_TIMEOUT:-300}
export AF_SOURCE_DIR AF_BIN

AF_TMP=
AF_INVENTORY=
AF_AGENT_NAMES=()
declare -A AF_AGENT_PID=() AF_AGENT_PORT=() AF_AGENT_PLATFORM=() AF_AGENT_DIR=()
AF_INV_HOSTS=()          # "name|endpoint|platform[,platform]" for af_inventory_write
AF_CLEANUP=()            # extra commands run (in reverse) at exit
AF_REGISTRY_STARTED=0
AF_FARM_FAILED=0

# --- messages and assertions ---------------------------------------------

af_log() { printf '== %s\n' "$*" >&2; }

# af_fail MESSAGE...: prints FAIL with the message and exits 1 (the EXIT
# trap then stops everything and shows the agents' logs).
af_fail() {
    printf 'FAIL: %s\n' "$*" >&2
    AF_FARM_FAILED=1
    exit 1
}

# af_assert_eq EXPECTED ACTUAL WHAT
af_assert_eq() {
    if [[ "$1" != "$2" ]]; then
        af_fail "$3: expected '$1', got '$2'"
    fi
    printf 'ok: %s\n' "$3" >&2
}

# af_assert_ne UNEXPECTED ACTUAL WHAT
af_assert_ne() {
    if [[ "$1" == "$2" ]]; then
        af_fail "$3: did not expect '$2'"
    fi
    printf 'ok: %s\n' "$3" >&2
}

# af_assert_contains HAYSTACK NEEDLE WHAT (fixed string)
af_assert_contains() {
    if [[ "$1" != *"$2"* ]]; then
        af_fail "$3: '$2' not found in:
$1"
    fi
    printf 'ok: %s\n' "$3" >&2
}

# af_assert_match HAYSTACK ERE WHAT (extended regex, any line)
af_assert_match() {
    if ! grep -Eq -- "$2" <<<"$1"; then
        af_fail "$3: /$2/ does not match:
$1"
    fi
    printf 'ok: %s\n' "$3" >&2
}

# af_assert_file_contains FILE NEEDLE WHAT
af_assert_file_contains() {
    [[ -f "$1" ]] || af_fail "$3: $1 does not exist"
    if ! grep -Fq -- "$2" "$1"; then
        af_fail "$3: '$2' not in $1:
$(tail -n 40 "$1")"
    fi
    printf 'ok: %s\n' "$3" >&2
}

# af_run_rc VAR CMD...: runs CMD with stdout+stderr to $AF_TMP/last.out,
# stores its exit status in VAR and never trips `set -e`.
af_run_rc() {
    local __var=$1
    shift
    local __rc=0
    "$@" >"$AF_TMP/last.out" 2>&1 || __rc=$?
    printf -v "$__var" '%s' "$__rc"
}

# af_wait_until TIMEOUT_S WHAT CMD...: polls CMD (every 50 ms) until it
# succeeds; fails the test after TIMEOUT_S (decimals allowed, monotonic
# clock). A bounded poll on an observable event, not a sleep standing in
# for one.
af_wait_until() {
    local timeout=$1 what=$2
    shift 2
    local t0
    t0=$(af_now)
    until "$@"; do
        if ! af_le "$(af_elapsed "$t0")" "$timeout"; then
            af_fail "timed out after ${timeout}s waiting for $what"
        fi
        sleep 0.05
    done
}

# --- temp dir, ports, cleanup --------------------------------------------

af_farm_init() {
    for b in archfarm archfarm-agent; do
        [[ -x "$AF_BIN/$b" ]] || {
            echo "FAIL: $AF_BIN/$b not found or not executable (build first, or set AF_BIN)" >&2
            exit 1
        }
    done
    AF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/archfarm-test.XXXXXX")
    export AF_TMP
    # the coordinator's context stat cache stays inside the test
    export ARCHFARM_CACHE_DIR=$AF_TMP/cache
    trap af_farm_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    s_watchdog_start
}

# A whole-test deadline (AF_TEST_TIMEOUT, default 540 s: below ctest's 600 s,
# which kills with no chance to clean up). When it passes, the test shell
# and its direct children get SIGTERM, so the EXIT trap still stops
# everything. Not a synchronisation device: it only bounds a hung test.
AF_WATCHDOG=
s_watchdog_start() {
    local t=${AF_TEST_TIMEOUT:-540} top=$$
    (
        trap 'kill "$sp" 2>/dev/null; exit 0' TERM
        sleep "$t" &
        sp=$!
        wait "$sp"
        echo "FAIL: test exceeded AF_TEST_TIMEOUT=${t}s; stopping it" >&2
        kill -TERM "$top" 2>/dev/null
        pkill -TERM -P "$top" 2>/dev/null
    ) &
    AF_WATCHDOG=$!
}

# af_on_exit CMD...: runs CMD at exit (after agents stop, before the
# registry stops and the temp dir goes).
af_on_exit() {
    local q
    printf -v q '%q ' "$@"
    AF_CLEANUP+=("$q")
}

# Prints a TCP port nobody listens on right now (the kernel picks it).
af_free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

af_farm_cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [[ -n $AF_WATCHDOG ]] && kill -TERM "$AF_WATCHDOG" 2>/dev/null
    af_agents_stop || rc=1
    local i
    for ((i = ${#AF_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${AF_CLEANUP[i]}" >/dev/null 2>&1
    done
    if ((AF_REGISTRY_STARTED)); then
        af_registry_stop >/dev/null 2>&1
        AF_REGISTRY_STARTED=0
    fi
    if ((rc != 0)) && [[ -n $AF_TMP && -d $AF_TMP ]]; then
        local f
        for f in "$AF_TMP"/agents/*/stderr.log "$AF_TMP"/registry/*.log; do
            [[ -s $f ]] || continue
            printf '\n--- %s (last 30 lines)\n' "${f#"$AF_TMP"/}" >&2
            # (the registry logs every HEAD of a blob it lacks: normal, not news)
            grep -v 'blob unknown to registry' "$f" | tail -n 30 >&2
        done
    fi
    if [[ -n $AF_TMP && -d $AF_TMP ]]; then
        if [[ ${AF_KEEP_TMP:-0} == 1 ]]; then
            echo "kept $AF_TMP" >&2
        else
            rm -rf "$AF_TMP"
        fi
    fi
    exit "$rc"
}

# --- registry ----------------------------------------------------------------

# Starts Debian's docker-registry on a free loopback port (tests/lib/registry.sh)
# and exports AF_REGISTRY=127.0.0.1:PORT.
af_farm_registry_start() {
    # shellcheck source=registry.sh
    source "$AF_SOURCE_DIR/tests/lib/registry.sh"
    mkdir -p "$AF_TMP/registry"
    AF_REGISTRY_STARTED=1
    af_registry_start "$AF_TMP/registry" || af_fail "could not start docker-registry"
    [[ -n ${AF_REGISTRY:-} ]] || af_fail "af_registry_start did not set AF_REGISTRY"
    af_log "registry at $AF_REGISTRY"
}

# --- agents --------------------------------------------------------------------

# 0: listening; 1: not yet (the log may not even exist yet: the shell opens
# it in the child after the fork); 2: the agent process is gone.
s_agent_listening() {
    local name=$1 pid=${AF_AGENT_PID[$1]}
    if ! kill -0 "$pid" 2>/dev/null; then
        return 2
    fi
    grep -qs 'listening' "${AF_AGENT_DIR[$name]}/stderr.log" || return 1
}

s_agent_register() {
    local n
    for n in "${AF_AGENT_NAMES[@]}"; do [[ $n == "$1" ]] && return 0; done
    AF_AGENT_NAMES+=("$1")
}

# af_agent_start NAME PLATFORM [AGENT FLAGS...]
# Starts archfarm-agent NAME serving PLATFORM on a free 127.0.0.1 port with
# --insecure and a workdir in the test's temp dir, adds it to the inventory,
# and returns once its stderr says it is listening (bounded, 20 s).
# AF_AGENT_BIN overrides the binary (e.g. a cross-built one, run through
# AF_AGENT_WRAP=(qemu-aarch64-static -L SYSROOT)); AF_AGENT_NO_PLATFORM=1
# leaves --platform out, so the agent detects its own (PLATFORM then only
# goes into the inventory).
af_agent_start() {
    local name=$1 platform=$2
    shift 2
    local dir="$AF_TMP/agents/$name" tries port pid st deadline
    local bin=${AF_AGENT_BIN:-$AF_BIN/archfarm-agent} pflag=(--platform "$platform")
    [[ ${AF_AGENT_NO_PLATFORM:-0} == 1 ]] && pflag=()
    mkdir -p "$dir/work"
    for tries in 1 2 3; do
        port=$(af_free_port)
        # AF_AGENT_WRAP (an array, e.g. valgrind and its options) runs the agent under a tool
        ${AF_AGENT_WRAP[@]+"${AF_AGENT_WRAP[@]}"} "$bin" --name "$name" \
            --listen "tcp://127.0.0.1:$port" \
            ${pflag[@]+"${pflag[@]}"} --workdir "$dir/work" --insecure "$@" \
            >"$dir/stdout.log" 2>"$dir/stderr.log" &
        pid=$!
        # registered at once, so the EXIT trap stops it whatever happens next
        s_agent_register "$name"
        AF_AGENT_PID[$name]=$pid
        AF_AGENT_PORT[$name]=$port
        AF_AGENT_PLATFORM[$name]=$platform
        AF_AGENT_DIR[$name]=$dir
        deadline=$((SECONDS + 20))
        while :; do
            st=0
            s_agent_listening "$name" || st=$?
            ((st == 0)) && break
            if ((st == 2)); then
                wait "$pid" 2>/dev/null || true
                unset "AF_AGENT_PID[$name]"
                # lost a race for the port: try another one
                if grep -qi 'in use' "$dir/stderr.log" && ((tries < 3)); then
                    continue 2
                fi
                af_fail "agent $name exited during startup:
$(tail -n 20 "$dir/stderr.log")"
            fi
            if ((SECONDS >= deadline)); then
                af_fail "agent $name did not log 'listening' within 20s:
$(tail -n 20 "$dir/stderr.log")"
            fi
            sleep 0.05
        done
        AF_INV_HOSTS+=("$name|tcp://127.0.0.1:$port|$platform")
        af_log "agent $name ($platform) pid $pid on tcp://127.0.0.1:$port"
        return 0
    done
}

# af_agent_stop NAME: SIGTERM, wait up to 15 s (then SIGKILL). Returns 1 when
# the agent exited non-zero or had to be killed.
af_agent_stop() {
    local name=$1 pid=${AF_AGENT_PID[$1]:-} rc=0 deadline
    [[ -n $pid ]] || return 0
    unset "AF_AGENT_PID[$name]"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        echo "FAIL: agent $name did not exit within 15s of SIGTERM (killed)" >&2
        return 1
    fi
    wait "$pid" 2>/dev/null || rc=$?
    if ((rc != 0)); then
        echo "FAIL: agent $name exited with status $rc after SIGTERM" >&2
        return 1
    fi
    if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "${AF_AGENT_DIR[$name]}/stderr.log"; then
        echo "FAIL: agent $name reported a sanitizer error" >&2
        return 1
    fi
    return 0
}

af_agents_stop() {
    local name rc=0
    for name in "${AF_AGENT_NAMES[@]}"; do
        af_agent_stop "$name" || rc=1
    done
    return "$rc"
}

# af_agent_no_job_dirs NAME: true when agent NAME holds no job dir.
af_agent_no_job_dirs() {
    [[ -z $(find "${AF_AGENT_DIR[$1]}/work" -mindepth 2 -maxdepth 2 -path '*/jobs/*' 2>/dev/null) ]]
}

# af_no_build_processes: true when no process runs inside any agent's job
# dir of this test (build steps are started with cwd in the job dir).
af_no_build_processes() {
    local c
    for c in /proc/[0-9]*/cwd; do
        [[ $(readlink "$c" 2>/dev/null) == "$AF_TMP"/agents/*/jobs/* ]] && return 1
    done
    return 0
}

# af_inventory_add_host NAME ENDPOINT PLATFORM: a host that is not started
# here (e.g. a dead port, to see it reported unreachable).
af_inventory_add_host() {
    AF_INV_HOSTS+=("$1|$2|$3")
}

# af_inventory_write FILE: an Ansible YAML inventory with every agent
# started so far (and every added host) in group archfarm_agents, plaintext
# transport. Exports AF_INVENTORY=FILE.
af_inventory_write() {
    local file=$1 h name endpoint platforms p
    {
        echo "# written by tests/lib/farm.sh"
        echo "all:"
        echo "  children:"
        echo "    archfarm_agents:"
        echo "      vars:"
        echo "        archfarm_insecure: true"
        echo "      hosts:"
        for h in "${AF_INV_HOSTS[@]}"; do
            IFS='|' read -r name endpoint platforms <<<"$h"
            echo "        $name:"
            echo "          ansible_host: 127.0.0.1"
            echo "          archfarm_endpoint: \"$endpoint\""
            echo "          archfarm_platforms:"
            for p in ${platforms//,/ }; do
                echo "            - $p"
            done
        done
    } >"$file"
    AF_INVENTORY=$file
    export AF_INVENTORY
}

# --- the coordinator and registry clients ---------------------------------

# af_archfarm ARGS...: the coordinator on $AF_INVENTORY, bounded by AF_TIMEOUT.
af_archfarm() {
    timeout -k 10 "$AF_TIMEOUT" "$AF_BIN/archfarm" -i "$AF_INVENTORY" "$@"
}

# af_build OUTFILE ARGS...: `archfarm build ARGS` against the test registry
# (plain HTTP, so --insecure-registry), progress plain, all output to
# OUTFILE; returns the coordinator's exit status.
af_build() {
    local out=$1
    shift
    local rc=0
    af_archfarm build --progress plain --insecure-registry "$AF_REGISTRY" "$@" >"$out" 2>&1 || rc=$?
    return "$rc"
}

# af_manifest_raw REF-PATH: GETs /v2/<name>/manifests/<ref> from the test
# registry, printing the exact bytes (OCI and Docker media types accepted).
af_manifest_raw() {
    local name=${1%%[:@]*} ref=${1#*[:@]}
    curl -fsS \
        -H 'Accept: application/vnd.oci.image.index.v1+json' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$AF_REGISTRY/v2/$name/manifests/$ref"
}

# af_blob NAME DIGEST: prints a blob from the test registry.
af_blob() {
    curl -fsSL "http://$AF_REGISTRY/v2/$1/blobs/$2"
}

# af_tag_digest NAME:TAG: prints sha256:<hex> of the manifest the tag holds
# (computed over the bytes served), or nothing with status 1 if no such tag.
af_tag_digest() {
    local f="$AF_TMP/.manifest.$$"
    af_manifest_raw "$1" >"$f" 2>/dev/null || { rm -f "$f"; return 1; }
    printf 'sha256:%s\n' "$(sha256sum <"$f" | cut -d' ' -f1)"
    rm -f "$f"
}

# af_skopeo ARGS...: skopeo with no TLS to the test registry and no policy
# file needed.
af_skopeo() {
    skopeo --insecure-policy "$@"
}

# af_oci_validate KIND FILE: validates FILE (config|manifest|index) against
# the OCI image-spec v1.1.1 schemas (Apache-2.0) kept in the repository
# under tests/unit/data/oci/schema, so a clone checks itself anywhere.
af_oci_validate() {
    local schemas="$AF_SOURCE_DIR/tests/unit/data/oci/schema"
    local validator="$AF_SOURCE_DIR/tests/unit/data/oci/validate.py"
    [[ -f "$schemas/image-index-schema.json" ]] ||
        af_fail "OCI schemas not found at $schemas"
    [[ -f $validator ]] || af_fail "schema validator $validator missing"
    local out
    out=$(python3 "$validator" "$schemas" "$1" "$2" 2>&1) ||
        af_fail "$2 is not a valid OCI $1: $out"
    printf 'ok: %s is a valid OCI %s\n' "$(basename "$2")" "$1" >&2
}

# af_build_ok N PLATFORMS REF CTX [ARGS...]: `archfarm build --push
# --progress plain` of CTX for PLATFORMS to REF, output in
# $AF_TMP/build-N.out (echoed to stderr), metadata in $AF_TMP/m-N.json;
# fails the test unless it exits 0.
af_build_ok() {
    local n=$1 plats=$2 ref=$3 ctx=$4 rc=0
    shift 4
    af_build "$AF_TMP/build-$n.out" --platform "$plats" -t "$ref" --push --progress plain \
        --metadata-file "$AF_TMP/m-$n.json" "$@" "$ctx" || rc=$?
    cat "$AF_TMP/build-$n.out" >&2
    af_assert_eq 0 "$rc" "archfarm build #$n exit status"
}

# af_slice N PLATFORM FIELD: FIELD of PLATFORM's slice in $AF_TMP/m-N.json.
af_slice() {
    jq -r --arg p "$2" ".slices[] | select(.platform == \$p) | .$3" "$AF_TMP/m-$1.json"
}

# af_raw_client_init: sets PY (Debian's python3, with python3-zmq and
# python3-msgpack) and RAW (tests/integration/raw_client.py, the wire
# protocol spoken directly); fails the test when the modules are missing.
af_raw_client_init() {
    PY=/usr/bin/python3
    RAW=$AF_SOURCE_DIR/tests/integration/raw_client.py
    "$PY" -c 'import zmq, msgpack' 2>/dev/null ||
        af_fail "$PY lacks zmq/msgpack (apt-get install python3-zmq python3-msgpack)"
}

# af_qemu_for PLATFORM: the command prefix that runs a binary of PLATFORM on
# this (amd64) host: nothing, qemu-aarch64-static or qemu-arm-static.
af_qemu_for() {
    case $1 in
    linux/amd64) echo "" ;;
    linux/arm64) echo qemu-aarch64-static ;;
    linux/arm/v7 | linux/arm/v6 | linux/arm) echo qemu-arm-static ;;
    *) af_fail "no way to run $1 binaries here" ;;
    esac
}

# af_pull_rootfs REF PLATFORM DIR: pulls the PLATFORM image of REF with
# skopeo --override-arch/--override-variant into DIR/image (dir: layout) and
# unpacks its layers into DIR/rootfs.
af_pull_rootfs() {
    local ref=$1 platform=$2 dir=$3 os arch variant
    IFS=/ read -r os arch variant <<<"$platform"
    local args=(--override-os "$os" --override-arch "$arch")
    [[ -n $variant ]] && args+=(--override-variant "$variant")
    mkdir -p "$dir/image" "$dir/rootfs"
    af_skopeo "${args[@]}" copy --src-tls-verify=false "docker://$ref" "dir:$dir/image" >"$dir/skopeo.log" 2>&1 ||
        af_fail "skopeo ${args[*]} copy docker://$ref failed: $(cat "$dir/skopeo.log")"
    local layer
    for layer in $(jq -r '.layers[].digest' "$dir/image/manifest.json"); do
        tar --warning=no-unknown-keyword -xzf "$dir/image/${layer#sha256:}" -C "$dir/rootfs" ||
            af_fail "cannot unpack layer $layer of $ref ($platform)"
    done
}

# af_cross_ensure ARCH: build-cross/ARCH (binaries and .debs) from
# scripts/cross-build, made or remade when missing or older than the
# sources (tests/run-all.sh's cross step normally made them already).
af_cross_ensure() {
    local arch=$1 bin="$AF_SOURCE_DIR/build-cross/$1/bin/archfarm-agent"
    if [[ ! -x $bin || $AF_SOURCE_DIR/scripts/cross-build -nt $bin ]] ||
        [[ -n $(find "$AF_SOURCE_DIR/common" "$AF_SOURCE_DIR/agent" "$AF_SOURCE_DIR/coordinator" \
            "$AF_SOURCE_DIR/CMakeLists.txt" -newer "$bin" \( -name '*.[ch]' -o -name CMakeLists.txt \) -print -quit) ]] ||
        ! ls "$AF_SOURCE_DIR"/build-cross/"$arch"/archfarm-agent_*_"$arch".deb >/dev/null 2>&1; then
        af_log "cross-building for $arch (scripts/cross-build $arch)"
        "$AF_SOURCE_DIR/scripts/cross-build" "$arch" >"$AF_TMP/cross-$arch.log" 2>&1 ||
            af_fail "scripts/cross-build $arch failed: $(tail -n 30 "$AF_TMP/cross-$arch.log")"
    fi
}
