#!/usr/bin/env bash
# test_liveness_and_cancel -- long steps, queueing, and nothing left behind.
#
#   1. One agent serving linux/arm64 and linux/arm/v7 with --max-jobs 1 gets
#      both slices of a build whose steps each sleep 4 s (longer than the
#      3 missed heartbeats that declare a peer dead): the build succeeds
#      (heartbeats flow while steps run), one slice is reported queued, and
#      the two steps never overlap.
#   2. A coordinator killed with SIGKILL mid-step: the agent notices the
#      silence, kills the step's process group and removes the job dir.
#   3. A coordinator sent SIGTERM mid-step exits 143, says no tag was
#      written, and the agent cancels the slice: no process, no job dir, no tag.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start
# --confine off: the steps write marker files into the test dir, outside
# their job dirs (test_confine.sh covers confinement)
af_agent_start node-arm linux/arm64,linux/arm/v7 --max-jobs 1 --confine off
af_agent_start node-amd64 linux/amd64 --confine off
af_inventory_write "$AF_TMP/inventory.yaml"
cp -r "$AF_SOURCE_DIR/tests/integration/fixtures/slow" "$AF_TMP/ctx"
M="$AF_TMP/markers"
mkdir -p "$M"

# --- 1. queueing and heartbeats during long steps ------------------------------
rc=0
af_build "$AF_TMP/queue.out" --platform linux/arm64,linux/arm/v7 --build-arg "MARKER_DIR=$M" \
    --build-arg SLEEP=4 -t "$AF_REGISTRY/slow:q" --push "$AF_TMP/ctx" || rc=$?
cat "$AF_TMP/queue.out" >&2
af_assert_eq 0 "$rc" "two 4 s slices on one max-jobs-1 agent succeed (liveness holds during long steps)"
af_assert_match "$(cat "$AF_TMP/queue.out")" '^\[linux/(arm64|arm/v7) node-arm\] .*queued' "one slice was queued"
for a in arm64 armv7; do
    [[ -f $M/started-$a && -f $M/finished-$a ]] || af_fail "step for $a left no start/finish marker"
done
overlap=$(awk -v s1="$(cat "$M/started-arm64")" -v f1="$(cat "$M/finished-arm64")" \
    -v s2="$(cat "$M/started-armv7")" -v f2="$(cat "$M/finished-armv7")" \
    'BEGIN { print (s1 < f2 && s2 < f1) ? "overlap" : "sequential" }')
af_assert_eq sequential "$overlap" "max_jobs 1: the two steps ran one after the other"
af_assert_eq 2 "$(af_manifest_raw slow:q | jq '.manifests | length')" "index with both platforms"
af_agent_no_job_dirs node-arm || af_fail "node-arm kept a job dir"

# s_start_build TAG: starts a long build on node-amd64 in the background
# (no timeout wrapper: the test signals the coordinator itself), sets COORD.
s_start_build() {
    rm -f "$M/started-amd64"
    "$AF_BIN/archfarm" -i "$AF_INVENTORY" build --progress plain --platform linux/amd64 \
        --build-arg "MARKER_DIR=$M" --build-arg SLEEP=300 -t "$AF_REGISTRY/slow:$1" --push \
        "$AF_TMP/ctx" >"$AF_TMP/$1.out" 2>&1 &
    COORD=$!
    af_on_exit kill -KILL "$COORD"
    af_wait_until 60 "the $1 build step to start" test -f "$M/started-amd64"
}
s_step_running() { ! af_no_build_processes; }
s_agent_clean() { af_agent_no_job_dirs node-amd64 && af_no_build_processes; }
s_exited() { ! kill -0 "$1" 2>/dev/null; }

# --- 2. coordinator lost mid-step ------------------------------------------------------
s_start_build lost
s_step_running || af_fail "no build process seen while the step should sleep"
kill -KILL "$COORD"
wait "$COORD" 2>/dev/null || true
af_wait_until 20 "node-amd64 to cancel the job of its lost coordinator" s_agent_clean
printf 'ok: the agent killed the step and removed the job dir of a lost coordinator\n' >&2
af_assert_file_contains "$AF_TMP/agents/node-amd64/stderr.log" "cancelling" "the agent logged the cancel"
af_tag_digest slow:lost >/dev/null && af_fail "tag slow:lost exists"

# --- 3. coordinator interrupted mid-step --------------------------------------------------
s_start_build term
kill -TERM "$COORD"
af_wait_until 30 "the coordinator to exit after SIGTERM" s_exited "$COORD"
rc=0
wait "$COORD" || rc=$?
cat "$AF_TMP/term.out" >&2
af_assert_eq 143 "$rc" "SIGTERM: archfarm build exits 143"
af_assert_contains "$(cat "$AF_TMP/term.out")" "no tag" "it says no tag was written"
af_wait_until 20 "node-amd64 to cancel the slice" s_agent_clean
printf 'ok: the cancelled slice left no process and no job dir\n' >&2
af_tag_digest slow:term >/dev/null && af_fail "tag slow:term exists"

echo "PASS: test_liveness_and_cancel"
