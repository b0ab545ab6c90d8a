#!/usr/bin/env bash
# test_failover -- a node lost mid-slice costs a retry on another node of the
# same platform, not the build.
#
# Two agents serve linux/amd64. The slice's step sleeps on the node that
# got it; that agent is then frozen (SIGSTOP: it stops answering, like a
# hung or partitioned host). The coordinator must declare it lost after the
# liveness window, run the slice again on the other node, publish, and
# record both attempts in the metadata file. When the frozen agent comes
# back (SIGCONT) it must notice its coordinator is gone and clean up: no
# build process, no job dir.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start
# --confine off: the steps write marker files into the test dir, outside
# their job dirs (test_confine.sh covers confinement)
af_agent_start node-a linux/amd64 --confine off
af_agent_start node-b linux/amd64 --confine off
af_inventory_write "$AF_TMP/inventory.yaml"
cp -r "$AF_SOURCE_DIR/tests/integration/fixtures/slow" "$AF_TMP/ctx"
M="$AF_TMP/markers"
mkdir -p "$M"

timeout -k 10 "$AF_TIMEOUT" "$AF_BIN/archfarm" -i "$AF_INVENTORY" build --progress plain \
    --platform linux/amd64 --build-arg "MARKER_DIR=$M" --build-arg SLEEP=300 \
    -t "$AF_REGISTRY/fo:1" --push --metadata-file "$AF_TMP/m.json" "$AF_TMP/ctx" >"$AF_TMP/build.out" 2>&1 &
COORD=$!
af_on_exit kill -TERM "$COORD"   # timeout(1) passes it on to archfarm
af_wait_until 60 "the step to start on one node" test -f "$M/started-amd64"

first=node-a other=node-b
if af_agent_no_job_dirs node-a; then first=node-b other=node-a; fi
af_agent_no_job_dirs "$other" || af_fail "both nodes hold a job for one slice"
af_log "slice running on $first; freezing it"
kill -STOP "${AF_AGENT_PID[$first]}"
af_on_exit kill -CONT "${AF_AGENT_PID[$first]}"

rc=0
wait "$COORD" || rc=$?
cat "$AF_TMP/build.out" >&2
af_assert_eq 0 "$rc" "the build survives the loss of $first"
[[ -f $M/retried-amd64 ]] || af_fail "the slice was not run a second time"
m="$AF_TMP/m.json"
af_assert_eq "$other" "$(jq -r '.slices[0].node' "$m")" "the slice was built on $other"
af_assert_eq 2 "$(jq '.slices[0].attempts | length' "$m")" "metadata records two attempts"
af_assert_eq "$first" "$(jq -r '.slices[0].attempts[0].node' "$m")" "attempt 1 was on $first"
af_assert_ne ok "$(jq -r '.slices[0].attempts[0].result' "$m")" "attempt 1 failed"
af_assert_eq "$other ok" "$(jq -r '.slices[0].attempts[1] | "\(.node) \(.result)"' "$m")" "attempt 2 succeeded on $other"
af_assert_match "$(cat "$AF_TMP/build.out")" "$first" "the progress output names the lost node"
af_assert_eq 1 "$(af_manifest_raw fo:1 | jq '.manifests | length')" "fo:1 published"

kill -CONT "${AF_AGENT_PID[$first]}"
s_clean() { af_agent_no_job_dirs "$first" && af_no_build_processes; }
af_wait_until 30 "$first, thawed, to cancel the job of its vanished coordinator" s_clean
printf 'ok: %s cleaned up after coming back\n' "$first" >&2

echo "PASS: test_failover"
