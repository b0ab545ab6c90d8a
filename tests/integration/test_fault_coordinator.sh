#!/usr/bin/env bash
# test_fault_coordinator -- the coordinator dies or is interrupted while
# three agents build.
#
#   1. kill -9 of the coordinator mid-build: within liveness x heartbeat + kill
#      grace (+ scaled slack) every agent's build processes are gone and its
#      job dirs removed.
#   2. SIGINT while linux/amd64 has finished and the two arm slices still
#      run: the remaining slices are cancelled on their agents (each answers
#      RESULT cancelled), archfarm exits 130, no tag is written, and the
#      metadata file records the cancelled attempts.
#   3. --no-fail-fast: one slice fails its build step, the others are left
#      to finish, every outcome is reported, exit 1, nothing is published.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"
source "$AF_SOURCE_DIR/tests/lib/faults.sh"

af_farm_init
af_faults_init
af_farm_registry_start
# explicit, so the cleanup bound below is derived from them
HB_MS=1000 LIVENESS=3 GRACE_MS=2000
AGENT_TIMING=(--heartbeat-ms "$HB_MS" --liveness "$LIVENESS" --kill-grace-ms "$GRACE_MS")
af_fault_agent_start amd linux/amd64 "${AGENT_TIMING[@]}"
af_fault_agent_start arm64 linux/arm64 "${AGENT_TIMING[@]}"
af_fault_agent_start armv7 linux/arm/v7 "${AGENT_TIMING[@]}"
af_inventory_write "$AF_TMP/inventory.yaml"
af_fault_recipe "$AF_TMP/ctx"
AGENTS=(amd arm64 armv7)
PLATFORMS=linux/amd64,linux/arm64,linux/arm/v7

s_all_clean() {
    local a
    for a in "${AGENTS[@]}"; do af_agent_clean "$a" || return 1; done
}
s_all_started() {
    local a
    for a in amd64 arm64 armv7; do [[ -n $(af_started_on "$a" "$M") ]] || return 1; done
}
s_exited() { ! kill -0 "$1" 2>/dev/null; }

# --- 1. coordinator killed ------------------------------------------------------------
M="$AF_TMP/m1"
mkdir -p "$M"
"$AF_BIN/archfarm" -i "$AF_INVENTORY" build --progress plain --insecure-registry "$AF_REGISTRY" \
    --platform "$PLATFORMS" --build-arg "MARKER_DIR=$M" --build-arg "SLOW=amd64 arm64 armv7" \
    -t "$AF_REGISTRY/coord:killed" --push "$AF_TMP/ctx" >"$AF_TMP/b1.out" 2>&1 &
COORD=$!
af_on_exit kill -KILL "$COORD"
af_wait_until 60 "all three steps to start" s_all_started
for a in "${AGENTS[@]}"; do
    af_agent_no_build_processes "$a" && af_fail "no build process on $a while its step sleeps"
done
t_kill=$(af_now)
kill -KILL "$COORD"
wait "$COORD" 2>/dev/null || true
# the agents' settings: liveness x heartbeat to notice, then TERM and at most
# the kill grace before KILL; plus slack
bound=$(af_time_bound "$(awk -v l="$LIVENESS" -v h="$HB_MS" -v g="$GRACE_MS" \
    'BEGIN { print (l * h + g) / 1000 }')" 2)
until s_all_clean; do
    if ! af_le "$(af_elapsed "$t_kill")" "$bound"; then
        for a in "${AGENTS[@]}"; do
            af_agent_clean "$a" || echo "still busy: $a: $(af_build_pids "$a" | tr '\n' ' ')" >&2
        done
        af_fail "agents not clean within $bound s of the coordinator's SIGKILL"
    fi
    sleep 0.05
done
took=$(af_elapsed "$t_kill")
printf 'ok: every agent killed its steps and removed its job dirs %s s after the coordinator died (bound %s s)\n' "$took" "$bound" >&2
for a in "${AGENTS[@]}"; do
    af_assert_file_contains "$AF_TMP/agents/$a/stderr.log" "cancelling its jobs" "$a noticed its lost coordinator"
done
af_tag_digest coord:killed >/dev/null && af_fail "tag coord:killed exists"

# --- 2. SIGINT ----------------------------------------------------------------------------
M="$AF_TMP/m2"
mkdir -p "$M"
"$AF_BIN/archfarm" -i "$AF_INVENTORY" build --progress plain --insecure-registry "$AF_REGISTRY" \
    --platform "$PLATFORMS" --build-arg "MARKER_DIR=$M" --build-arg "SLOW=arm64 armv7" \
    -t "$AF_REGISTRY/coord:int" --push --metadata-file "$AF_TMP/m2.json" "$AF_TMP/ctx" \
    >"$AF_TMP/b2.out" 2>&1 &
COORD=$!
af_on_exit kill -KILL "$COORD"
# the slice's result line, "[linux/amd64 amd] done sha256:... in 0.4s"
s_amd_done() { grep -Eq '^\[linux/amd64 amd\] done sha256:[0-9a-f]{64} in ' "$AF_TMP/b2.out"; }
af_wait_until 60 "the linux/amd64 slice to finish" s_amd_done
af_wait_until 60 "all three steps to start" s_all_started
t_int=$(af_now)
kill -INT "$COORD"
af_wait_until 15 "the coordinator to exit after SIGINT" s_exited "$COORD"
rc=0
wait "$COORD" || rc=$?
took=$(af_elapsed "$t_int")
cat "$AF_TMP/b2.out" >&2
af_assert_eq 130 "$rc" "SIGINT: archfarm build exits 130"
af_assert_contains "$(cat "$AF_TMP/b2.out")" "no tag was written" "it says no tag was written"
af_log "SIGINT -> exit 130: $took s"
af_wait_until 10 "the arm agents to be clean" s_all_clean
for a in arm64 armv7; do
    af_assert_file_contains "$AF_TMP/agents/$a/stderr.log" "failed (cancelled)" "$a cancelled its slice"
done
af_tag_digest coord:int >/dev/null && af_fail "tag coord:int exists"
m="$AF_TMP/m2.json"
af_assert_eq "ok" "$(jq -r '.slices[] | select(.platform == "linux/amd64") | .result' "$m")" \
    "metadata: linux/amd64 finished"
af_assert_eq "cancelled cancelled" \
    "$(jq -r '[.slices[] | select(.platform != "linux/amd64") | .result] | join(" ")' "$m")" \
    "metadata: both arm slices cancelled"

# --- 3. --no-fail-fast ------------------------------------------------------------------
M="$AF_TMP/m3"
mkdir -p "$M"
rc=0
af_build "$AF_TMP/b3.out" --no-fail-fast --platform "$PLATFORMS" --build-arg "MARKER_DIR=$M" \
    --build-arg FAIL=amd64 --build-arg "SLOW=arm64 armv7" --build-arg SLEEP=3 \
    -t "$AF_REGISTRY/coord:nff" --push --metadata-file "$AF_TMP/m3.json" "$AF_TMP/ctx" || rc=$?
cat "$AF_TMP/b3.out" >&2
af_assert_eq 1 "$rc" "--no-fail-fast with a failed slice exits 1"
m="$AF_TMP/m3.json"
af_assert_eq "linux/amd64=build linux/arm/v7=ok linux/arm64=ok" \
    "$(jq -r '[.slices[] | "\(.platform)=\(.result)"] | sort | join(" ")' "$m")" \
    "the other slices were left to finish and every outcome is recorded"
for a in arm64 armv7; do
    [[ -f $(ls "$M"/finished-"$a"-* 2>/dev/null | head -n 1) ]] || af_fail "the $a step did not finish"
done
af_assert_eq 1 "$(jq '.slices[] | select(.platform == "linux/amd64") | .attempts | length' "$m")" \
    "a build failure is not retried by default"
af_tag_digest coord:nff >/dev/null && af_fail "tag coord:nff exists"
printf 'ok: --no-fail-fast published nothing\n' >&2

echo "PASS: test_fault_coordinator"
