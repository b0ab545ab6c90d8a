#!/usr/bin/env bash
# test_fault_partition -- a busy node cut off the network.
#
# Two linux/arm64 agents, each in its own network namespace joined to this
# host by a veth (tests/lib/netns.sh); the registry listens on the host
# side of the second node's link. node-a is preferred (archfarm_priority)
# and gets the slice, whose step sleeps; then node-a's link goes down
# (`ip link set ... down` in its namespace). With --heartbeat-interval 500
# --liveness 4 (and the agents at --heartbeat-ms 500) the coordinator must
# declare node-a lost within liveness x interval + 1 s = 3 s of the cut,
# measured from the JSON progress timestamps, and finish the slice on
# node-b. node-a, still running but alone, must cancel its job and clean up
# (its own liveness), and the metadata must record both attempts.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"
source "$AF_SOURCE_DIR/tests/lib/faults.sh"
source "$AF_SOURCE_DIR/tests/lib/netns.sh"

af_farm_init
if ! af_netns_available; then
    echo "SKIP: test_fault_partition needs network namespaces (root, iproute2)" >&2
    exit 0
fi
af_faults_init
af_netns_create a
af_netns_create b
af_netns_registry_start b
HB=500
LIVENESS=4
# --confine off: the steps write marker files into the test dir, outside
# their job dirs (test_confine.sh covers confinement)
af_netns_agent_start node-a a linux/arm64 --heartbeat-ms "$HB" --liveness "$LIVENESS" --confine off
af_netns_agent_start node-b b linux/arm64 --heartbeat-ms "$HB" --liveness "$LIVENESS" --confine off
af_inventory_write "$AF_TMP/inventory.yaml"
# node-a first: lower archfarm_priority wins a tie in load
python3 - "$AF_INVENTORY" <<'EOF'
import sys
p = sys.argv[1]
out = []
for line in open(p):
    out.append(line)
    for name, prio in (("node-a", 0), ("node-b", 10)):
        if line.strip() == name + ":":
            out.append("          archfarm_priority: %d\n" % prio)
open(p, "w").write("".join(out))
EOF
af_fault_recipe "$AF_TMP/ctx"
M="$AF_TMP/markers"
mkdir -p "$M"

af_archfarm build --progress json --insecure-registry "$AF_REGISTRY" \
    --heartbeat-interval "$HB" --liveness "$LIVENESS" --platform linux/arm64 \
    --build-arg "MARKER_DIR=$M" --build-arg SLOW=arm64 -t "$AF_REGISTRY/cut:1" --push \
    --metadata-file "$AF_TMP/m.json" "$AF_TMP/ctx" >"$AF_TMP/events.json" 2>"$AF_TMP/build.err" &
COORD=$!
af_on_exit kill -TERM "$COORD"
s_started() { [[ -n $(af_started_on arm64 "$M") ]]; }
af_wait_until 60 "the arm64 step to start" s_started
af_assert_eq node-a "$(af_started_on arm64 "$M")" "the preferred node-a got the slice"
# wall clock here: the JSON events carry epoch "time" stamps
t_cut=$(date +%s.%N)
af_netns_cut a
af_log "node-a's link is down"
rc=0
wait "$COORD" || rc=$?
cat "$AF_TMP/build.err" >&2
af_assert_eq 0 "$rc" "the build survives the partition of node-a"

# detection: the time of the RESULT event that failed node-a's attempt
t_lost=$(jq -r 'select(.type == "result" and .node == "node-a" and .ok == false) | .time' \
    "$AF_TMP/events.json" | head -n 1)
[[ -n $t_lost ]] || af_fail "no failed result event for node-a in the JSON progress:
$(tail -n 20 "$AF_TMP/events.json")"
detect=$(af_elapsed "$t_cut" "$t_lost")
bound=$(af_time_bound "$(awk -v h="$HB" -v l="$LIVENESS" 'BEGIN { print h * l / 1000 }')" 1)
af_le "$detect" "$bound" || af_fail "node-a declared lost $detect s after the cut (bound $bound s)"
printf 'ok: node-a declared lost %s s after its link went down (bound %s s)\n' "$detect" "$bound" >&2
af_assert_match "$(jq -r 'select(.type == "result" and .node == "node-a") | .message' "$AF_TMP/events.json")" \
    "node-a lost" "the result says node-a was lost"

m="$AF_TMP/m.json"
af_assert_eq "node-a infra|node-b ok" \
    "$(jq -r '[.slices[0].attempts[] | "\(.node) \(.result)"] | join("|")' "$m")" \
    "metadata: attempt 1 lost on node-a, attempt 2 ok on node-b"
af_assert_eq 1 "$(af_manifest_raw cut:1 | jq '.manifests | length')" "cut:1 published"

# node-a, cut off, loses its coordinator too: it cancels and cleans up
af_wait_until 15 "node-a to cancel the job of the coordinator it cannot hear" af_agent_clean node-a
printf 'ok: node-a killed its step and removed its job dir while cut off\n' >&2
af_netns_restore a
af_log "detection time: $detect s (interval $HB ms x liveness $LIVENESS + 1 s = $bound s)"

echo "PASS: test_fault_partition"
