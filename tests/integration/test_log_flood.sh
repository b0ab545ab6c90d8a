#!/usr/bin/env bash
# test_log_flood -- a build step that prints faster than any coordinator
# reads (issue 12, finding 1). Before the fix the agent's ROUTER dropped
# messages past its high-water mark, RESULT included, and the coordinator
# waited forever.
#
#   1. 400000 lines, LAST-LINE, exit 3: the coordinator reports the failure
#      (exit 1, status 3) within a bound, LAST-LINE is in its output, and the
#      dropped lines are counted in a message (never silent).
#   2. 3000000 lines, LAST-LINE, success: published within a bound, LAST-LINE
#      in the output, the drop count reported.
# Bound: the step itself (about 1 s of seq) plus 5 s x AF_TEST_TIME_SCALE;
# the coordinator runs under `timeout` a little past it so a hang fails the
# test instead of stalling it.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start
af_agent_start node-amd64 linux/amd64
af_inventory_write "$AF_TMP/inventory.yaml"
cp -r "$AF_SOURCE_DIR/tests/integration/fixtures/flood" "$AF_TMP/ctx"

# s_flood OUT LINES STATUS TAG: one build, prints its exit status; OUT gets
# stdout+stderr and OUT.took the seconds it took
s_flood() {
    local out=$1 lines=$2 status=$3 tag=$4 t0 rc=0
    t0=$(af_now)
    AF_TIMEOUT=$(af_time_bound 10 10) af_build "$out" --timeout 120 --platform linux/amd64 \
        --build-arg "LINES=$lines" --build-arg "STATUS=$status" \
        -t "$AF_REGISTRY/flood:$tag" --push "$AF_TMP/ctx" || rc=$?
    af_elapsed "$t0" >"$out.took"
    echo "$rc"
}

bound=$(af_time_bound 1 5)

# s_check OUT LINES STATUS TAG EXPECTED_RC: one flood build and what every
# one must show: its exit status within the bound, LAST-LINE, and every
# line either shown or counted as dropped (none lost silently)
s_check() {
    local out=$1 lines=$2 status=$3 tag=$4 want=$5 rc took n_out n_drop
    rc=$(s_flood "$out" "$lines" "$status" "$tag")
    took=$(cat "$out.took")
    tail -n 5 "$out" >&2
    af_assert_eq "$want" "$rc" "$lines lines then exit $status: archfarm exits $want"
    af_le "$took" "$bound" || af_fail "the result took $took s to arrive (bound $bound s)"
    af_log "$lines lines + exit $status: result after $took s (bound $bound s)"
    grep -q '^\[linux/amd64 node-amd64\] LAST-LINE$' "$out" ||
        af_fail "LAST-LINE (the end of the log) did not arrive"
    printf 'ok: LAST-LINE arrived\n' >&2
    n_out=$(grep -c '^\[linux/amd64 node-amd64\] [0-9]*$' "$out" || true)
    n_drop=$(grep -o '[0-9]* lines of output dropped' "$out" | awk '{ s += $1 } END { print s + 0 }')
    af_log "lines shown $n_out, dropped (counted) $n_drop"
    ((n_drop > 0)) || af_fail "no dropped lines counted for $lines lines"
    af_assert_eq "$lines" "$((n_out + n_drop))" "shown + counted dropped = every line printed"
}

# --- 1. fast output, then failure -------------------------------------------
s_check "$AF_TMP/fail.out" 400000 3 fail 1
af_assert_match "$(grep -v '^\[linux/' "$AF_TMP/fail.out")" '(status|code|exit)[^0-9]{0,12}3([^0-9]|$)' \
    "the error gives the step status 3"
af_assert_file_contains "$AF_TMP/agents/node-amd64/stderr.log" "lines of build output were dropped" \
    "the agent logs the drop"

# --- 2. fast output, success ----------------------------------------------------
s_check "$AF_TMP/ok.out" 3000000 0 ok 0
af_tag_digest flood:ok >/dev/null || af_fail "flood:ok was not published"

echo "PASS: test_log_flood"
