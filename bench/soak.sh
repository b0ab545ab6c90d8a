#!/usr/bin/env bash
# soak.sh -- N builds in a row on a farm whose agents get killed (SIGKILL)
# and restarted at random, between and during builds; then the numbers.
#
#   bench/soak.sh                          # 200 builds, after cmake --build build
#   SOAK_BUILDS=50 SOAK_SEED=7 AF_BIN=build-x/bin bench/soak.sh
#   SOAK_MAX_SECONDS=600 bench/soak.sh      # stop starting builds after 10 min
#
# Farm: 3 platforms (linux/amd64, linux/arm64, linux/arm/v7) x 2 agents each,
# on loopback, one local docker-registry, a small native recipe (the
# fault-injection recipe of tests/lib/faults.sh: one random architecture's
# first attempt sleeps SOAK_SLEEP s so a kill lands mid-slice). Coordinator
# and agents heartbeat every 300 ms, liveness 3.
#
# Every build i pushes -t soak:latest with BUILD_ID=i baked into each
# slice's /platform.txt, so every published index is distinct. Faults:
#   - during the build, with probability SOAK_P_KILL (default 40 %), after
#     a random 0.1-1.5 s, kill -9 one agent (a busy one when there is one);
#   - after the build each dead agent is restarted with probability 1/2, and
#     always after it missed 2 builds (restart = same port and workdir: the
#     agent must kill its orphaned step and remove the stale job dir).
# After each build the tag is checked:
#   - exit 0: soak:latest is the printed index digest, and that index holds
#     exactly the 3 platforms, each child a manifest the registry serves
#     whose config has that platform and whose layer's /platform.txt says
#     "<platform> <i>" (every child verified by hand, not by archfarm);
#   - exit != 0: soak:latest did not move (same digest as before the build).
# Anything else is a violation. At the end every agent is restarted and no
# build process or job dir may remain anywhere. Results go to
# bench/results/soak.txt (and stdout); exit 1 on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export AF_SOURCE_DIR=$ROOT AF_BIN=${AF_BIN:-$ROOT/build/bin}
N=${SOAK_BUILDS:-200}
MAX_S=${SOAK_MAX_SECONDS:-0}
SEED=${SOAK_SEED:-$$}
P_KILL=${SOAK_P_KILL:-40}
SLEEP_S=${SOAK_SLEEP:-2}
HB=300
export AF_TIMEOUT=${AF_TIMEOUT:-120}
export AF_TEST_TIMEOUT=${AF_TEST_TIMEOUT:-$((MAX_S > 0 ? MAX_S + 300 : N * 30 + 300))}
RESULTS=${SOAK_RESULTS:-$ROOT/bench/results/soak.txt}
RANDOM=$SEED

# shellcheck source=../tests/lib/farm.sh
source tests/lib/farm.sh
# shellcheck source=../tests/lib/faults.sh
source tests/lib/faults.sh

af_farm_init
af_faults_init
af_farm_registry_start
AGENTS=(amd-1 amd-2 arm64-1 arm64-2 armv7-1 armv7-2)
declare -A PLAT=([amd-1]=linux/amd64 [amd-2]=linux/amd64 [arm64-1]=linux/arm64
    [arm64-2]=linux/arm64 [armv7-1]=linux/arm/v7 [armv7-2]=linux/arm/v7)
declare -A MISSED=()
for a in "${AGENTS[@]}"; do
    af_fault_agent_start "$a" "${PLAT[$a]}" --heartbeat-ms "$HB" --liveness 3
    MISSED[$a]=0
done
af_inventory_write "$AF_TMP/inventory.yaml"
af_fault_recipe "$AF_TMP/ctx"
ARCHES=(amd64 arm64 armv7)

published=0 failed_clean=0 violations=0 kills=0 kills_mid=0 restarts=0 orphans_reaped=0
failovers=0 exit1=0 exit3=0 exit_other=0
declare -a VIOL=()
s_violation() {
    violations=$((violations + 1))
    VIOL+=("build $1: $2")
    echo "VIOLATION build $1: $2" >&2
}

s_live() {
    local a
    for a in "${AGENTS[@]}"; do [[ -n ${AF_AGENT_PID[$a]:-} ]] && echo "$a"; done
}
s_dead() {
    local a
    for a in "${AGENTS[@]}"; do [[ -z ${AF_AGENT_PID[$a]:-} ]] && echo "$a"; done
}
s_pick() { # a random word of its arguments
    (($#)) || return 1
    local w=("$@")
    echo "${w[RANDOM % $#]}"
}

# s_check_index I DIGEST: the published index is complete and right.
s_check_index() {
    local i=$1 want=$2 idx plats d p cfg got layer txt
    idx=$(af_manifest_raw soak:latest) || { s_violation "$i" "soak:latest unreadable"; return; }
    got=sha256:$(printf '%s' "$idx" | sha256sum | cut -d' ' -f1)
    [[ $got == "$want" ]] || s_violation "$i" "soak:latest is $got, archfarm printed $want"
    plats=$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)\(if .variant then "/\(.variant)" else "" end)"] | sort | join(" ")' <<<"$idx")
    [[ $plats == "linux/amd64 linux/arm/v7 linux/arm64" ]] ||
        s_violation "$i" "index platforms are '$plats'"
    while read -r d p; do
        local m
        m=$(af_manifest_raw "soak@$d") || { s_violation "$i" "child $d ($p) missing"; continue; }
        cfg=$(af_blob soak "$(jq -r .config.digest <<<"$m")") || {
            s_violation "$i" "config of $d missing"
            continue
        }
        got=$(jq -r '"\(.os)/\(.architecture)\(if .variant then "/\(.variant)" else "" end)"' <<<"$cfg")
        [[ $got == "$p" ]] || s_violation "$i" "child $d is labelled $p but its config says $got"
        layer=$(jq -r '.layers[-1].digest' <<<"$m")
        txt=$(af_blob soak "$layer" | tar -xzO platform.txt 2>/dev/null) || txt=
        [[ $txt == "$p $i" ]] || s_violation "$i" "child $d ($p) holds '$txt', not '$p $i'"
    done < <(jq -r '.manifests[] | "\(.digest) \(.platform.os)/\(.platform.architecture)\(if .platform.variant then "/\(.platform.variant)" else "" end)"' <<<"$idx")
}

t0=$SECONDS
done_builds=0
prev=
for ((i = 1; i <= N; i++)); do
    if ((MAX_S > 0 && SECONDS - t0 >= MAX_S)); then
        af_log "time budget of $MAX_S s spent: stopping after $done_builds builds"
        break
    fi
    M="$AF_TMP/markers/$i"
    mkdir -p "$M"
    slow=${ARCHES[RANDOM % 3]}
    out="$AF_TMP/build.out"
    "$AF_BIN/archfarm" -i "$AF_INVENTORY" build --progress plain \
        --insecure-registry "$AF_REGISTRY" --heartbeat-interval "$HB" --liveness 3 \
        --platform linux/amd64,linux/arm64,linux/arm/v7 --build-arg "MARKER_DIR=$M" \
        --build-arg "SLOW=$slow" --build-arg "SLEEP=$SLEEP_S" --build-arg "BUILD_ID=$i" \
        -t "$AF_REGISTRY/soak:latest" --push --metadata-file "$AF_TMP/m.json" "$AF_TMP/ctx" \
        >"$out" 2>&1 &
    coord=$!
    if ((RANDOM % 100 < P_KILL)); then
        # fault injection timing, not synchronisation: a kill at a random moment
        sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.1 + (r % 140) / 100 }')"
        victim=
        busy=()
        for a in $(s_live); do af_agent_no_job_dirs "$a" || busy+=("$a"); done
        if ((${#busy[@]})); then victim=$(s_pick "${busy[@]}"); else victim=$(s_pick $(s_live) || true); fi
        if [[ -n $victim ]] && kill -0 "$coord" 2>/dev/null; then
            af_agent_kill9 "$victim" 2>/dev/null
            kills=$((kills + 1))
            kills_mid=$((kills_mid + 1))
        fi
    fi
    rc=0
    wait "$coord" || rc=$?
    done_builds=$i
    now=$(af_tag_digest soak:latest 2>/dev/null || true)
    if ((rc == 0)); then
        published=$((published + 1))
        s_check_index "$i" "$(tail -n 1 "$out")"
        failovers=$((failovers + $(jq '[.slices[] | select((.attempts | length) > 1)] | length' "$AF_TMP/m.json")))
    else
        case $rc in 1) exit1=$((exit1 + 1)) ;; 3) exit3=$((exit3 + 1)) ;; *) exit_other=$((exit_other + 1)) ;; esac
        if [[ $now != "$prev" ]]; then
            s_violation "$i" "exit $rc but soak:latest moved from '${prev:-none}' to '${now:-none}'"
        elif ((rc == 1 || rc == 3)); then
            failed_clean=$((failed_clean + 1))
        else
            s_violation "$i" "exit $rc (expected 0, 1 or 3): $(tail -n 3 "$out" | tr '\n' ' ')"
        fi
    fi
    prev=$now
    # restarts: each dead agent with probability 1/2, always after 2 missed builds
    for a in $(s_dead); do
        MISSED[$a]=$((MISSED[$a] + 1))
        if ((RANDOM % 2 == 0 || MISSED[$a] >= 2)); then
            n=$(af_build_pids "$a" | wc -l)
            af_agent_restart "$a" >/dev/null 2>&1
            af_agent_clean "$a" || s_violation "$i" "$a restarted but its stale step or job dir remains"
            orphans_reaped=$((orphans_reaped + n))
            restarts=$((restarts + 1))
            MISSED[$a]=0
        fi
    done
    printf '%4d exit %d  published %d  failed cleanly %d  violations %d  kills %d  restarts %d\n' \
        "$i" "$rc" "$published" "$failed_clean" "$violations" "$kills" "$restarts" >&2
done
elapsed=$((SECONDS - t0))

# the end: everyone back, nothing left behind
for a in $(s_dead); do
    n=$(af_build_pids "$a" | wc -l)
    af_agent_restart "$a" >/dev/null 2>&1
    orphans_reaped=$((orphans_reaped + n))
    restarts=$((restarts + 1))
done
s_idle() { local a; for a in "${AGENTS[@]}"; do af_agent_clean "$a" || return 1; done; }
af_wait_until 15 "every agent to be idle and clean" s_idle

mkdir -p "$(dirname "$RESULTS")"
{
    echo "# bench/soak.sh -- $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(nproc) cores"
    echo "command: SOAK_BUILDS=$N SOAK_MAX_SECONDS=$MAX_S SOAK_SEED=$SEED SOAK_P_KILL=$P_KILL SOAK_SLEEP=$SLEEP_S bench/soak.sh"
    echo "farm: 3 platforms x 2 agents (loopback), heartbeat ${HB} ms, liveness 3, native recipe, --retries 2 (default)"
    echo "builds run:                 $done_builds (of $N requested) in $elapsed s"
    echo "published (verified index): $published"
    echo "failed cleanly (tag kept):  $failed_clean (exit 1: $exit1, exit 3: $exit3, other: $exit_other)"
    echo "slices that failed over:    $failovers"
    echo "agents killed (SIGKILL):    $kills (all during a build)"
    echo "agent restarts:             $restarts (orphaned build processes killed at restart: $orphans_reaped)"
    echo "tags at an incomplete or wrong index, or moved by a failed build: $violations"
    for v in "${VIOL[@]}"; do echo "  $v"; done
    echo "left behind at the end: no build process, no job dir (checked)"
} | tee "$RESULTS"
((violations == 0)) || exit 1
