#!/usr/bin/env bash
# test_valgrind -- one real build with the agent and the coordinator under
# valgrind (memcheck): no invalid reads/writes, no uses of uninitialised
# memory, no definite leaks in either process.
#
# Three agents under valgrind, one per platform (linux/amd64, linux/arm64,
# linux/arm/v7), each running its slice (loop, worker actors, the build
# step's child process); the coordinator under valgrind packs, streams,
# verifies and publishes; then, after a one-line change to the (now 1.5
# MiB) context, a second build sends each agent a delta, which the agents
# apply in their worker threads (docs/protocol.md, Context deltas). Under
# valgrind both run 20-50x slower, so heartbeats are stretched (2 s x 5).
# The ASan pass of the suite skips this test (valgrind cannot run
# ASan-instrumented binaries); the plain pass runs it.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

command -v valgrind >/dev/null || af_fail "valgrind is not installed (tests/lib/deps.sh installs it)"
# (no `| grep -q` under pipefail: an early grep exit would SIGPIPE the producer)
if [[ $(ldd "$AF_BIN/archfarm-agent" 2>/dev/null) == *libasan* ]]; then
    echo "SKIP: ASan-instrumented build: valgrind cannot run it (the plain build runs this test)"
    exit 0
fi

af_farm_init
af_farm_registry_start
VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-origins=no --child-silent-after-fork=yes)
NODES=(vg-amd64 vg-arm64 vg-armv7)
PLATFORMS=(linux/amd64 linux/arm64 linux/arm/v7)
for i in 0 1 2; do
    AF_AGENT_WRAP=("${VG[@]}" "--log-file=$AF_TMP/${NODES[i]}.vg")
    af_agent_start "${NODES[i]}" "${PLATFORMS[i]}" --heartbeat-ms 2000 --liveness 5
done
unset AF_AGENT_WRAP
af_inventory_write "$AF_TMP/inventory.yaml"
cp -r "$AF_SOURCE_DIR/tests/integration/fixtures/cross-c" "$AF_TMP/ctx"
head -c $((1536 * 1024)) /dev/urandom >"$AF_TMP/ctx/padding.bin" # over AF_CTXDELTA_MIN_BYTES

# vg_build N WHAT: the coordinator under valgrind builds $AF_TMP/ctx to vg/app:N
# (output in build-N.out, memcheck log in coord-N.vg); both must be clean
vg_build() {
    local rc=0
    timeout -k 10 300 "${VG[@]}" "--log-file=$AF_TMP/coord-$1.vg" "$AF_BIN/archfarm" -i "$AF_INVENTORY" \
        build --progress plain --insecure-registry "$AF_REGISTRY" \
        --heartbeat-interval 2000 --liveness 5 --platform linux/amd64,linux/arm64,linux/arm/v7 \
        -t "$AF_REGISTRY/vg/app:$1" --push "$AF_TMP/ctx" >"$AF_TMP/build-$1.out" 2>&1 || rc=$?
    cat "$AF_TMP/build-$1.out" >&2
    grep -E "ERROR SUMMARY|definitely lost" "$AF_TMP/coord-$1.vg" >&2 || true
    af_assert_eq 0 "$rc" "the $2 under valgrind succeeds (99 would be a memcheck error)"
    af_assert_file_contains "$AF_TMP/coord-$1.vg" "ERROR SUMMARY: 0 errors" \
        "coordinator ($2): memcheck reports 0 errors"
}

vg_build 1 build
af_assert_eq 3 "$(af_manifest_raw vg/app:1 | jq '.manifests | length')" "the index has the 3 platforms"

echo "/* changed */" >>"$AF_TMP/ctx/hello.c"
vg_build 2 "delta rebuild"
af_assert_eq 3 "$(grep -c 'sending a delta' "$AF_TMP/build-2.out")" "each of the 3 agents was sent a delta"

for n in "${NODES[@]}"; do
    af_agent_stop "$n" || af_fail "agent $n under valgrind did not exit 0 after SIGTERM (99 = memcheck error):
$(grep -E 'ERROR SUMMARY|Invalid|uninitialised|definitely' "$AF_TMP/$n.vg" | head -20)"
    grep -E "ERROR SUMMARY|definitely lost" "$AF_TMP/$n.vg" >&2 || true
    af_assert_file_contains "$AF_TMP/$n.vg" "ERROR SUMMARY: 0 errors" "agent $n: memcheck reports 0 errors"
done
echo "ok: agents and coordinator are valgrind-clean over a 3-platform build and a delta rebuild"
