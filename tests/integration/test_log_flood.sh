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

# --- 1. fast output, then failure -------------------------------------------
rc=$(s_flood "$AF_TMP/fail.out" 400000 3 fail)
took=$(cat "$AF_TMP/fail.out.took")
tail -n 20 "$AF_TMP/fail.out" >&2
af_assert_eq 1 "$rc" "a flooding step that exits 3 fails the build (exit 1)"
af_le "$took" "$bound" || af_fail "the failure took $took s to arrive (bound $bound s)"
af_log "400000 lines + exit 3: failure reported after $took s (bound $bound s)"
af_assert_match "$(grep -v '^\[linux/' "$AF_TMP/fail.out")" '(status|code|exit)[^0-9]{0,12}3([^0-9]|$)' \
    "the error gives the step status 3"
grep -q '^\[linux/amd64 node-amd64\] LAST-LINE$' "$AF_TMP/fail.out" ||
    af_fail "LAST-LINE (the end of the log) did not arrive"
printf 'ok: LAST-LINE arrived\n' >&2
af_assert_match "$(cat "$AF_TMP/fail.out")" '[0-9]+ lines of output dropped' "the dropped lines are counted"
n_out=$(grep -c '^\[linux/amd64 node-amd64\] [0-9]*$' "$AF_TMP/fail.out" || true)
n_drop=$(grep -o '[0-9]* lines of output dropped' "$AF_TMP/fail.out" | awk '{ s += $1 } END { print s + 0 }')
af_log "lines shown $n_out, dropped (counted) $n_drop"
# every line is either shown or counted: none is lost silently
af_assert_eq 400000 "$((n_out + n_drop))" "shown + counted dropped = every line printed"
af_assert_file_contains "$AF_TMP/agents/node-amd64/stderr.log" "lines of build output were dropped" \
    "the agent logs the drop"

# --- 2. fast output, success ----------------------------------------------------
rc=$(s_flood "$AF_TMP/ok.out" 3000000 0 ok)
took=$(cat "$AF_TMP/ok.out.took")
tail -n 5 "$AF_TMP/ok.out" >&2
af_assert_eq 0 "$rc" "a flooding step that succeeds publishes (exit 0)"
af_le "$took" "$bound" || af_fail "the build took $took s (bound $bound s)"
af_log "3000000 lines + success: published after $took s (bound $bound s)"
grep -q '^\[linux/amd64 node-amd64\] LAST-LINE$' "$AF_TMP/ok.out" ||
    af_fail "LAST-LINE did not arrive"
af_assert_match "$(cat "$AF_TMP/ok.out")" '[0-9]+ lines of output dropped' "the dropped lines are counted"
af_tag_digest flood:ok >/dev/null || af_fail "flood:ok was not published"

echo "PASS: test_log_flood"
