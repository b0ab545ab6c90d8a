#!/usr/bin/env bash
# test_fault_agent_killed -- agents that die with SIGKILL (a crash, a power
# cut) mid-slice.
#
#   1. Two arm64 agents and one amd64 agent; the arm64 step sleeps. The arm64
#      agent that got the slice is killed with SIGKILL: the build still
#      succeeds on the other arm64 agent, the metadata file shows both
#      attempts, and the index holds both platforms.
#   2. The killed agent's build step survived it (orphaned). Restarted on
#      the same workdir, the agent kills that step and removes its job dir
#      before serving (its queue starts empty).
#   3. SIGTERM on the busy arm64 agent (no --drain): it cancels the job,
#      exits 0 with nothing left behind, and the slice fails over.
#   4. Kill -9 the only node of a platform: the build exits 1 within the
#      coordinator's liveness x heartbeat (+ scaled slack), no tag moves, and an earlier :stable
#      keeps its digest.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"
source "$AF_SOURCE_DIR/tests/lib/faults.sh"

af_farm_init
af_faults_init
af_farm_registry_start
af_fault_agent_start arm-a linux/arm64
af_fault_agent_start arm-b linux/arm64
af_fault_agent_start amd linux/amd64
af_inventory_write "$AF_TMP/inventory.yaml"
af_fault_recipe "$AF_TMP/ctx"

# --- 1. the arm64 node dies mid-slice ------------------------------------------------
M="$AF_TMP/m1"
mkdir -p "$M"
af_archfarm build --progress plain --insecure-registry "$AF_REGISTRY" \
    --platform linux/arm64,linux/amd64 --build-arg "MARKER_DIR=$M" --build-arg SLOW=arm64 \
    -t "$AF_REGISTRY/killed:1" --push --metadata-file "$AF_TMP/m1.json" "$AF_TMP/ctx" \
    >"$AF_TMP/b1.out" 2>&1 &
COORD=$!
af_on_exit kill -TERM "$COORD"
s_arm_started() { [[ -n $(af_started_on arm64 "$M") ]]; }
af_wait_until 60 "the arm64 step to start" s_arm_started
first=$(af_started_on arm64 "$M")
other=arm-a
[[ $first == arm-a ]] && other=arm-b
af_log "arm64 slice runs on $first; killing it with SIGKILL"
af_agent_no_build_processes "$first" && af_fail "no build process on $first while its step sleeps"
t_kill=$(af_now)
af_agent_kill9 "$first"
rc=0
wait "$COORD" || rc=$?
t_end=$(af_now)
cat "$AF_TMP/b1.out" >&2
af_assert_eq 0 "$rc" "the build survives the SIGKILL of $first"
m="$AF_TMP/m1.json"
arm=$(jq -c '.slices[] | select(.platform == "linux/arm64")' "$m")
af_assert_eq "$other" "$(jq -r .node <<<"$arm")" "linux/arm64 was built on $other"
af_assert_eq 2 "$(jq '.attempts | length' <<<"$arm")" "metadata records both arm64 attempts"
af_assert_eq "$first infra" "$(jq -r '.attempts[0] | "\(.node) \(.result)"' <<<"$arm")" \
    "attempt 1 on $first failed (infra)"
af_assert_eq "$other ok" "$(jq -r '.attempts[1] | "\(.node) \(.result)"' <<<"$arm")" \
    "attempt 2 on $other succeeded"
af_assert_match "$(jq -r '.attempts[0].message' <<<"$arm")" "$first lost" "attempt 1 says $first was lost"
af_assert_eq 1 "$(jq '.slices[] | select(.platform == "linux/amd64") | .attempts | length' "$m")" \
    "linux/amd64 needed one attempt"
af_assert_eq "linux/amd64 linux/arm64" \
    "$(af_manifest_raw killed:1 | jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort | join(" ")')" \
    "killed:1 holds both platforms"
af_log "kill -> build done: $(af_elapsed "$t_kill" "$t_end") s"

# --- 2. restart: the orphaned step is killed, the job dir removed ------------------------
orphans=$(af_build_pids "$first" | wc -l)
((orphans > 0)) || af_fail "expected the step of killed $first to survive it (orphaned)"
af_log "$orphans orphaned build process(es) of $first; restarting it"
t_restart=$(af_now)
af_agent_restart "$first"
# recovery runs before the agent listens: it must already be clean
af_agent_clean "$first" || af_fail "$first listens but its stale step or job dir is still there"
af_log "restart -> clean and listening: $(af_elapsed "$t_restart") s"
af_assert_file_contains "${AF_AGENT_DIR[$first]}/stderr.log" "killed stale build process" \
    "the restarted agent logged the kill"

# --- 3. SIGTERM on a busy agent: it drains (no --drain: cancels at once), fails over ---
M="$AF_TMP/m2"
mkdir -p "$M"
af_archfarm build --progress plain --insecure-registry "$AF_REGISTRY" \
    --platform linux/arm64 --build-arg "MARKER_DIR=$M" --build-arg SLOW=arm64 \
    -t "$AF_REGISTRY/drained:1" --push --metadata-file "$AF_TMP/m2.json" "$AF_TMP/ctx" \
    >"$AF_TMP/b2.out" 2>&1 &
COORD=$!
af_on_exit kill -TERM "$COORD"
af_wait_until 60 "the arm64 step to start" s_arm_started
busy=$(af_started_on arm64 "$M")
t_term=$(af_now)
af_agent_stop "$busy" || af_fail "$busy did not exit 0 after SIGTERM"
af_log "$busy exited 0 $(af_elapsed "$t_term") s after SIGTERM"
af_agent_clean "$busy" || af_fail "$busy left a build process or job dir after SIGTERM"
rc=0
wait "$COORD" || rc=$?
cat "$AF_TMP/b2.out" >&2
af_assert_eq 0 "$rc" "a slice on an agent shut down with SIGTERM fails over"
af_assert_eq "$busy infra" "$(jq -r '.slices[0].attempts[0] | "\(.node) \(.result)"' "$AF_TMP/m2.json")" \
    "attempt 1: the node gave the job up (infra)"
af_assert_match "$(jq -r '.slices[0].attempts[0].message' "$AF_TMP/m2.json")" "shutting down" \
    "its message says the node was shutting down"
af_assert_eq 2 "$(jq '.slices[0].attempts | length' "$AF_TMP/m2.json")" "attempt 2 on the other node"
af_agent_restart "$busy"

# --- 4. the only node of a platform dies -------------------------------------------------
M="$AF_TMP/m3"
mkdir -p "$M"
rc=0
af_build "$AF_TMP/stable.out" --platform linux/arm64,linux/amd64 --build-arg "MARKER_DIR=$M" \
    -t "$AF_REGISTRY/only:stable" --push "$AF_TMP/ctx" || rc=$?
af_assert_eq 0 "$rc" "publishing only:stable succeeds"
stable=$(af_tag_digest only:stable)
rm -f "$M"/*
af_agent_stop arm-b # arm-a is now the only arm64 node: it is killed below
HB_MS=1000 LIVENESS=3
af_archfarm build --progress plain --insecure-registry "$AF_REGISTRY" \
    --heartbeat-interval "$HB_MS" --liveness "$LIVENESS" \
    --platform linux/arm64,linux/amd64 --build-arg "MARKER_DIR=$M" --build-arg SLOW=arm64 \
    -t "$AF_REGISTRY/only:stable" -t "$AF_REGISTRY/only:new" --push \
    --metadata-file "$AF_TMP/m3.json" "$AF_TMP/ctx" >"$AF_TMP/b3.out" 2>&1 &
COORD=$!
af_on_exit kill -TERM "$COORD"
af_wait_until 60 "the arm64 step to start" s_arm_started
only=$(af_started_on arm64 "$M")
af_assert_eq arm-a "$only" "the only live arm64 node got the slice"
t_kill=$(af_now)
af_agent_kill9 arm-a
rc=0
wait "$COORD" || rc=$?
took=$(af_elapsed "$t_kill")
cat "$AF_TMP/b3.out" >&2
af_assert_eq 1 "$rc" "losing the only arm64 node fails the build (exit 1)"
bound=$(af_time_bound "$(awk -v l="$LIVENESS" -v h="$HB_MS" 'BEGIN { print l * h / 1000 }')" 2)
af_le "$took" "$bound" || af_fail "the build took ${took}s to fail after the kill (bound $bound s)"
printf 'ok: failed %s s after the kill (bound %s s)\n' "$took" "$bound" >&2
af_assert_match "$(cat "$AF_TMP/b3.out")" "arm-a" "the error names the lost node"
af_assert_contains "$(cat "$AF_TMP/b3.out")" "no tag was written" "it says no tag was written"
af_assert_eq "$stable" "$(af_tag_digest only:stable)" "only:stable keeps its digest"
af_tag_digest only:new >/dev/null && af_fail "only:new was created"
af_assert_eq "arm-a infra" \
    "$(jq -r '.slices[] | select(.platform == "linux/arm64") | .attempts[0] | "\(.node) \(.result)"' "$AF_TMP/m3.json")" \
    "metadata of the failed build records the lost attempt"
af_assert_eq null "$(jq '."containerimage.digest"' "$AF_TMP/m3.json")" "and no index digest"
af_log "kill -> exit 1: $took s"

echo "PASS: test_fault_agent_killed"
