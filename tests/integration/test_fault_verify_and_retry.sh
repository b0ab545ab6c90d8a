#!/usr/bin/env bash
# test_fault_verify_and_retry -- what the coordinator checks and retries.
#
#   1. A node that builds the wrong architecture (arm64 agent whose native
#      assembler labels its images linux/amd64: the test-only fault
#      injection ARCHFARM_AGENT_TEST_WRONG_PLATFORM) is rejected by the
#      verification before the index PUT, by name: exit 1, no tag moves,
#      :stable keeps its digest.
#   2. A flaky step (its first attempt exits non-zero) fails the build by
#      default (1 attempt) and succeeds with --retry-on-build-failure (on the
#      other node of the platform; 2 attempts in the metadata).
#   3. --retries 0: a lost node is not retried even with another node ready.
#   4. --node-selector picks among archfarm_labels; no match is exit 3
#      before anything starts, naming the selector.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"
source "$AF_SOURCE_DIR/tests/lib/faults.sh"

af_farm_init
af_faults_init
af_farm_registry_start
af_fault_agent_start amd-a linux/amd64
af_fault_agent_start amd-b linux/amd64
ARCHFARM_AGENT_TEST_WRONG_PLATFORM=linux/amd64 af_fault_agent_start liar linux/arm64
af_inventory_write "$AF_TMP/inventory.yaml"
af_fault_recipe "$AF_TMP/ctx"
# labels for part 4 (farm.sh writes none): amd-a zone=a, amd-b zone=b
python3 - "$AF_INVENTORY" <<'EOF'
import sys
p = sys.argv[1]
out = []
for line in open(p):
    out.append(line)
    for name, zone in (("amd-a", "a"), ("amd-b", "b")):
        if line.strip() == name + ":":
            out.append("          archfarm_labels: {zone: %s, disk: ssd}\n" % zone)
open(p, "w").write("".join(out))
EOF

# --- 1. the wrong architecture is never published ---------------------------------------
M="$AF_TMP/m0"
mkdir -p "$M"
rc=0
af_build "$AF_TMP/stable.out" --platform linux/amd64 --build-arg "MARKER_DIR=$M" \
    -t "$AF_REGISTRY/wrong:stable" --push "$AF_TMP/ctx" || rc=$?
af_assert_eq 0 "$rc" "publishing wrong:stable (amd64 only) succeeds"
stable=$(af_tag_digest wrong:stable)
M="$AF_TMP/m1"
mkdir -p "$M"
rc=0
af_build "$AF_TMP/wrong.out" --platform linux/amd64,linux/arm64 --build-arg "MARKER_DIR=$M" \
    -t "$AF_REGISTRY/wrong:stable" --push --metadata-file "$AF_TMP/m1.json" "$AF_TMP/ctx" || rc=$?
cat "$AF_TMP/wrong.out" >&2
af_assert_eq 1 "$rc" "a slice of the wrong architecture fails the build (exit 1)"
af_assert_match "$(cat "$AF_TMP/wrong.out")" "node liar built linux/amd64, not linux/arm64" \
    "verification names the node and both platforms"
af_assert_contains "$(cat "$AF_TMP/wrong.out")" "no tag was written" "it says no tag was written"
af_assert_eq "$stable" "$(af_tag_digest wrong:stable)" "wrong:stable keeps its digest"
af_assert_eq "liar verify" \
    "$(jq -r '.slices[] | select(.platform == "linux/arm64") | .attempts[-1] | "\(.node) \(.result)"' "$AF_TMP/m1.json")" \
    "metadata records the rejected attempt"
af_assert_file_contains "$AF_TMP/agents/liar/stderr.log" "TEST FAULT INJECTION" \
    "the agent logged its fault injection"

# --- 2. a flaky build step ----------------------------------------------------------------
M="$AF_TMP/m2"
mkdir -p "$M"
rc=0
af_build "$AF_TMP/flaky1.out" --platform linux/amd64 --build-arg "MARKER_DIR=$M" \
    --build-arg FLAKY=amd64 -t "$AF_REGISTRY/flaky:1" --push --metadata-file "$AF_TMP/m2.json" \
    "$AF_TMP/ctx" || rc=$?
af_assert_eq 1 "$rc" "a failed step is not retried by default"
af_assert_eq 1 "$(jq '.slices[0].attempts | length' "$AF_TMP/m2.json")" "one attempt"
rm -f "$M"/*
rc=0
af_build "$AF_TMP/flaky3.out" --retry-on-build-failure --platform linux/amd64 \
    --build-arg "MARKER_DIR=$M" --build-arg FLAKY=amd64 -t "$AF_REGISTRY/flaky:3" --push \
    --metadata-file "$AF_TMP/m3.json" "$AF_TMP/ctx" || rc=$?
af_assert_eq 0 "$rc" "--retry-on-build-failure: the second attempt succeeds"
m="$AF_TMP/m3.json"
af_assert_eq "build ok" "$(jq -r '[.slices[0].attempts[].result] | join(" ")' "$m")" \
    "metadata: attempt 1 build failure, attempt 2 ok"
af_assert_ne "$(jq -r '.slices[0].attempts[0].node' "$m")" "$(jq -r '.slices[0].attempts[1].node' "$m")" \
    "the retry ran on the other amd64 node"
af_assert_eq 1 "$(af_manifest_raw flaky:3 | jq '.manifests | length')" "flaky:3 published"

# --- 3. --retries 0 -------------------------------------------------------------------------
M="$AF_TMP/m4"
mkdir -p "$M"
af_archfarm build --progress plain --insecure-registry "$AF_REGISTRY" --retries 0 \
    --platform linux/amd64 --build-arg "MARKER_DIR=$M" --build-arg SLOW=amd64 \
    -t "$AF_REGISTRY/noretry:1" --push --metadata-file "$AF_TMP/m4.json" "$AF_TMP/ctx" \
    >"$AF_TMP/noretry.out" 2>&1 &
COORD=$!
af_on_exit kill -TERM "$COORD"
s_started() { [[ -n $(af_started_on amd64 "$M") ]]; }
af_wait_until 60 "the amd64 step to start" s_started
victim=$(af_started_on amd64 "$M")
af_agent_kill9 "$victim"
rc=0
wait "$COORD" || rc=$?
af_assert_eq 1 "$rc" "--retries 0: the lost node fails the build"
af_assert_eq 1 "$(jq '.slices[0].attempts | length' "$AF_TMP/m4.json")" "--retries 0: one attempt"
af_agent_restart "$victim"

# --- 4. --node-selector ----------------------------------------------------------------------
M="$AF_TMP/m5"
mkdir -p "$M"
for zone in a b; do
    rc=0
    af_build "$AF_TMP/sel-$zone.out" --node-selector "zone=$zone" --node-selector disk \
        --platform linux/amd64 --build-arg "MARKER_DIR=$M" -t "$AF_REGISTRY/sel:$zone" \
        --metadata-file "$AF_TMP/sel-$zone.json" "$AF_TMP/ctx" || rc=$?
    af_assert_eq 0 "$rc" "--node-selector zone=$zone builds"
    af_assert_eq "amd-$zone" "$(jq -r '.slices[0].node' "$AF_TMP/sel-$zone.json")" \
        "--node-selector zone=$zone picks amd-$zone"
done
rc=0
af_build "$AF_TMP/sel-none.out" --node-selector zone=c --platform linux/amd64 \
    --build-arg "MARKER_DIR=$M" -t "$AF_REGISTRY/sel:none" "$AF_TMP/ctx" || rc=$?
af_assert_eq 3 "$rc" "no node matches --node-selector: exit 3"
af_assert_contains "$(cat "$AF_TMP/sel-none.out")" "does not match --node-selector zone=c" \
    "the error names the selector"

echo "PASS: test_fault_verify_and_retry"
