#!/usr/bin/env bash
# test_interrupt_publish -- a signal or a timeout ends a build even while a
# registry stops answering, and says exactly which tags moved (issue 12,
# findings 2 and 3).
#
# The real registry sits behind tests/integration/registry_proxy.py, which
# forwards everything but never answers a manifest PUT to the tag "stall",
# nor a blob upload in repositories "hung/*". It logs each stalled request
# to an events file that the test awaits (no sleeps).
#   1. SIGINT while the tag PUT hangs: exit 130 within the bound, "no tag
#      was written", and the tag is absent from the registry.
#   2. The same with SIGTERM: exit 143.
#   3. Two tags, the second hangs: SIGINT gives 130 and names the first as
#      pointing at the index (it does, in the registry) and the second as
#      not written (it is absent).
#   4. SIGKILL mid-publish leaves no archfarm-context-* in TMPDIR: the
#      packed context never has a name.
#   5. --timeout 5 with a blob push that hangs: the agent ends the job (and
#      its push) at the timeout, the coordinator fails within the bound, the
#      slot and the job dir are freed, the next build on that node succeeds,
#      and SIGTERM stops the agent at once (no second signal).
#   6. SIGTERM to an agent whose push hangs (no timeout): the agent exits
#      within the bound on that one signal, and the coordinator reports the
#      slice cancelled instead of waiting.
# Bounds: the setting (0 s for a signal, --timeout for 5) plus slack x
# AF_TEST_TIME_SCALE, on the monotonic clock.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start
events=$AF_TMP/proxy.events
: >"$events"
python3 "$AF_SOURCE_DIR/tests/integration/registry_proxy.py" "$AF_TMP/proxy.port" \
    "$AF_REGISTRY" "$events" --stall-tag stall --stall-blob-repo hung/ \
    >"$AF_TMP/proxy.log" 2>&1 &
proxy_pid=$!
af_on_exit kill "$proxy_pid"
af_wait_until 10 "the proxy's port" test -s "$AF_TMP/proxy.port"
PROXY=127.0.0.1:$(cat "$AF_TMP/proxy.port")
af_log "proxy at $PROXY in front of $AF_REGISTRY"

af_agent_start amd64 linux/amd64
af_inventory_write "$AF_TMP/inv.yaml"
mkdir -p "$AF_TMP/ctx"
cat >"$AF_TMP/ctx/archfarm.yaml" <<'YAML'
build:
  run: mkdir -p out && echo hello > out/hello.txt
image:
  from: scratch
  copy:
    - {src: out/hello.txt, dest: /hello.txt}
YAML

# s_start OUT ARGS...: starts a build to the proxy in the background (BPID)
s_start() {
    local out=$1
    shift
    "$AF_BIN/archfarm" -i "$AF_INVENTORY" build --progress plain --insecure-registry "$PROXY" \
        --platform linux/amd64 "$@" --push "$AF_TMP/ctx" >"$out" 2>&1 &
    BPID=$!
}
s_stalls() { grep -c "^stalled" "$events" || true; }
# s_signal_during_tag SIG OUT TAGS...: starts a build, awaits the stalled tag
# PUT, sends SIG; sets RC and TOOK (seconds from the signal to the exit)
s_signal_during_tag() {
    local sig=$1 out=$2 before t0
    shift 2
    before=$(s_stalls)
    s_start "$out" "$@"
    af_wait_until "$(af_time_bound 10 10)" "the stalled tag PUT" \
        s_more_stalls "$before" "PUT /v2/.*/manifests/stall"
    t0=$(af_now)
    kill -"$sig" "$BPID"
    RC=0
    wait "$BPID" || RC=$?
    TOOK=$(af_elapsed "$t0")
}
s_more_stalls() { # BEFORE PATTERN
    (($(s_stalls) > $1)) && tail -n 1 "$events" | grep -q "$2"
}
BOUND=$(af_time_bound 0 2)

# --- 1. SIGINT while the tag PUT hangs ------------------------------------------
s_signal_during_tag INT "$AF_TMP/b1.out" -t "$PROXY/intr/app:stall"
out=$(cat "$AF_TMP/b1.out")
af_assert_eq 130 "$RC" "SIGINT during the tag PUT: exit 130 ($out)"
af_le "$TOOK" "$BOUND" || af_fail "SIGINT took ${TOOK} s to end the build (bound ${BOUND} s)"
af_assert_contains "$out" "interrupted (SIGINT); no tag was written" "the message says no tag moved"
if af_tag_digest intr/app:stall >/dev/null; then af_fail "the tag exists after an interrupted PUT"; fi
af_log "SIGINT during the tag PUT: exit 130 in ${TOOK} s, no tag"

# --- 2. SIGTERM ---------------------------------------------------------------
s_signal_during_tag TERM "$AF_TMP/b2.out" -t "$PROXY/intr/app:stall"
out=$(cat "$AF_TMP/b2.out")
af_assert_eq 143 "$RC" "SIGTERM during the tag PUT: exit 143 ($out)"
af_le "$TOOK" "$BOUND" || af_fail "SIGTERM took ${TOOK} s to end the build (bound ${BOUND} s)"
af_assert_contains "$out" "interrupted (SIGTERM); no tag was written" "the message says no tag moved"
af_log "SIGTERM during the tag PUT: exit 143 in ${TOOK} s"

# --- 3. after the commit point: which tags moved --------------------------------
s_signal_during_tag INT "$AF_TMP/b3.out" -t "$PROXY/intr/app:first" -t "$PROXY/intr/app:stall"
out=$(cat "$AF_TMP/b3.out")
af_assert_eq 130 "$RC" "SIGINT during the second tag: exit 130 ($out)"
first=$(af_tag_digest intr/app:first) || af_fail "the first tag was not written"
af_assert_contains "$out" "these tags now point at index $first: $PROXY/intr/app:first" \
    "the message names the tag that moved and the index"
af_assert_contains "$out" "not written: $PROXY/intr/app:stall" "the message names the tag that did not"
if af_tag_digest intr/app:stall >/dev/null; then af_fail "the stalled tag exists"; fi
af_log "SIGINT after the commit point: the moved tag is named"

# --- 4. SIGKILL leaves no packed context behind ----------------------------------
mkdir -p "$AF_TMP/tmpd"
before=$(s_stalls)
TMPDIR=$AF_TMP/tmpd s_start "$AF_TMP/b4.out" --no-cache -t "$PROXY/intr/app:stall" # packs
af_wait_until "$(af_time_bound 10 10)" "the stalled tag PUT" \
    s_more_stalls "$before" "PUT /v2/.*/manifests/stall"
ls -l "/proc/$BPID/fd" >"$AF_TMP/fds" 2>/dev/null || true
kill -KILL "$BPID"
wait "$BPID" 2>/dev/null || true
left=$(find "$AF_TMP/tmpd" -mindepth 1 -print)
[[ -z $left ]] || af_fail "SIGKILL left files in TMPDIR: $left"
grep -q "$AF_TMP/tmpd" "$AF_TMP/fds" || af_fail "the build held no file in TMPDIR (test is vacuous)"
af_log "SIGKILL: nothing left in TMPDIR"

# --- 5. --timeout covers a hung push -------------------------------------------
t0=$(af_now)
RC=0
"$AF_BIN/archfarm" -i "$AF_INVENTORY" build --progress plain --insecure-registry "$PROXY" \
    --platform linux/amd64 --timeout 5 -t "$PROXY/hung/app:1" --push "$AF_TMP/ctx" \
    >"$AF_TMP/b5.out" 2>&1 || RC=$?
took=$(af_elapsed "$t0")
out=$(cat "$AF_TMP/b5.out")
grep -q "stalled PUT /v2/hung/app/blobs/uploads/\|stalled PATCH /v2/hung/app/blobs/uploads/" "$events" ||
    af_fail "the push never reached the stalled upload (test is vacuous): $out"
af_assert_ne 0 "$RC" "a timed-out build fails ($out)"
af_assert_contains "$out" "timed out after 5 s" "the failure names the timeout"
bound=$(af_time_bound 5 4)
af_le "$took" "$bound" || af_fail "the timed-out build took ${took} s (bound ${bound} s)"
af_wait_until "$(af_time_bound 0 2)" "the job dir to go" af_agent_no_job_dirs amd64
RC=0
af_archfarm ls >"$AF_TMP/ls.out" 2>&1 || RC=$?
af_assert_eq 0 "$RC" "ls after the timeout: $(cat "$AF_TMP/ls.out")"
af_assert_match "$(cat "$AF_TMP/ls.out")" "amd64.* 0/1" "the slot is free again"
RC=0
af_build "$AF_TMP/b6.out" --platform linux/amd64 --timeout 60 -t "$AF_REGISTRY/after/app:1" \
    --push "$AF_TMP/ctx" || RC=$?
af_assert_eq 0 "$RC" "the next build on that node: $(cat "$AF_TMP/b6.out")"
t0=$(af_now)
af_agent_stop amd64 || af_fail "the agent did not stop on one SIGTERM"
took=$(af_elapsed "$t0")
bound=$(af_time_bound 0 3)
af_le "$took" "$bound" || af_fail "the agent took ${took} s to stop (bound ${bound} s)"
af_log "timeout: failed in the bound, slot freed, next build ok, agent stopped in ${took} s"

# --- 6. SIGTERM to an agent whose push hangs ------------------------------------------
af_agent_start amd64b linux/amd64
af_inventory_write "$AF_TMP/inv.yaml"
before=$(s_stalls)
s_start "$AF_TMP/b7.out" -t "$PROXY/hung/app:2"
af_wait_until "$(af_time_bound 10 10)" "the stalled blob upload" \
    s_more_stalls "$before" "/v2/hung/app/blobs/uploads/"
apid=${AF_AGENT_PID[amd64b]}
t0=$(af_now)
kill -TERM "$apid"
s_gone() { ! kill -0 "$apid" 2>/dev/null; }
af_wait_until "$(af_time_bound 0 3)" "the agent to exit on one SIGTERM" s_gone
took=$(af_elapsed "$t0")
RC=0
wait "$BPID" || RC=$?
out=$(cat "$AF_TMP/b7.out")
af_assert_ne 0 "$RC" "the build whose agent stopped fails ($out)"
af_assert_contains "$out" "cancelled" "the slice is reported cancelled"
unset "AF_AGENT_PID[amd64b]"
af_log "SIGTERM during a hung push: agent gone in ${took} s"
af_log "PASS"
