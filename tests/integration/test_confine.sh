#!/usr/bin/env bash
# test_confine -- a hostile native build step against the agent's own files
# (issue 12: Landlock confinement of native steps).
#
# One agent (max_jobs 2) with a config file and a CURVE certificate (its
# secret half on disk; the agent runs --insecure here so the test needs no
# key exchange: which files a step may touch does not depend on the
# transport). Job B runs and waits. Job A, on the same agent, tries to read
# the secret key, the public cert, the config file, B's context file and
# the context store, and to write outside its job dir; it prints what
# happened. Every attempt must fail with EACCES ("Permission denied"), the
# build reports each one, A's own TMPDIR works, and afterwards the agent
# still serves and B finishes and publishes. A control run on an agent with
# `confine: off` shows the same reads succeed there, so the test cannot
# pass with confinement absent. Skipped, with the reason, where the kernel
# has no Landlock. `archfarm inspect` shows each agent's confinement.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
if ! python3 -c 'import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
abi = libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, VERSION)
sys.exit(0 if abi >= 1 else 1)'; then
    echo "SKIP: test_confine: this kernel offers no Landlock (landlock_create_ruleset failed)" >&2
    exit 77
fi
af_farm_registry_start
C="$AF_TMP/conf"
mkdir -p "$C/keys"
"$AF_BIN/archfarm" keygen --name agent "$C/keys" >/dev/null 2>&1
printf 'max_jobs: 2\ncert: %s\n' "$C/keys/agent.key" >"$C/agent.yaml"
af_agent_start node-amd64 linux/amd64 --config "$C/agent.yaml"
af_assert_file_contains "$AF_TMP/agents/node-amd64/stderr.log" "confined: Landlock ABI" \
    "the agent says steps are confined"
af_inventory_write "$AF_TMP/inventory.yaml"
W="$AF_TMP/agents/node-amd64/work"

# --- job B: waits for a file the test puts into its context dir ---------------
mkdir -p "$AF_TMP/ctx-b"
echo "job B's context" >"$AF_TMP/ctx-b/secret-of-b.txt"
cat >"$AF_TMP/ctx-b/archfarm.yaml" <<'YAML'
build:
  run: |
    while [ ! -e go ]; do sleep 0.05; done
    mkdir -p out && cp secret-of-b.txt out/b.txt
image:
  copy:
    - {src: out/b.txt, dest: /b.txt}
YAML
af_build "$AF_TMP/b.out" --platform linux/amd64 -t "$AF_REGISTRY/confine:b" --push "$AF_TMP/ctx-b" &
B_PID=$!
af_on_exit kill -TERM "$B_PID"
s_b_running() { compgen -G "$W/jobs/*/ctx/secret-of-b.txt" >/dev/null; }
af_wait_until 60 "job B to run" s_b_running
b_file=$(compgen -G "$W/jobs/*/ctx/secret-of-b.txt" | head -n 1)
store=$(compgen -G "$W/contexts/*" | head -n 1)
[[ -n $store ]] || af_fail "no context in the store $W/contexts"

# --- job A: the hostile step ----------------------------------------------------
mkdir -p "$AF_TMP/ctx-a"
cat >"$AF_TMP/ctx-a/archfarm.yaml" <<'YAML'
build:
  run: |
    for f in $TARGETS; do
      if cat "$f" >/dev/null 2>err.txt; then echo "READ-OK $f"; else echo "READ-DENIED $f: $(cat err.txt)"; fi
    done
    if ls "$WORKDIR/jobs" >/dev/null 2>err.txt; then echo "LIST-OK"; else echo "LIST-DENIED: $(cat err.txt)"; fi
    if echo pwned >"$ESCAPE" 2>err.txt; then echo "WRITE-OK"; else echo "WRITE-DENIED: $(cat err.txt)"; fi
    echo scratch >"$TMPDIR/scratch" && echo "TMPDIR-OK $TMPDIR"
    mkdir -p out && echo a >out/a.txt
image:
  copy:
    - {src: out/a.txt, dest: /a.txt}
YAML
targets="$C/keys/agent.key_secret $C/keys/agent.key $C/agent.yaml $b_file $store"
rc=0
af_build "$AF_TMP/a.out" --platform linux/amd64 --build-arg "TARGETS=$targets" \
    --build-arg "WORKDIR=$W" --build-arg "ESCAPE=$AF_TMP/escape.txt" \
    -t "$AF_REGISTRY/confine:a" --push "$AF_TMP/ctx-a" || rc=$?
grep -E 'READ-|LIST-|WRITE-|TMPDIR-|confined' "$AF_TMP/a.out" >&2 || true
af_assert_eq 0 "$rc" "the hostile step's build itself completes"
af_assert_contains "$(cat "$AF_TMP/a.out")" "(confined: Landlock)" "the build says its step is confined"
for f in $targets; do
    grep -qF "READ-DENIED $f: cat: $f: Permission denied" "$AF_TMP/a.out" ||
        af_fail "reading $f was not refused with EACCES"
    printf 'ok: reading %s: Permission denied\n' "$f" >&2
done
grep -q "READ-OK" "$AF_TMP/a.out" && af_fail "the step read a file it must not see"
af_assert_match "$(cat "$AF_TMP/a.out")" "LIST-DENIED: .*Permission denied" "listing the workdir's jobs: EACCES"
af_assert_match "$(cat "$AF_TMP/a.out")" "WRITE-DENIED: .*Permission denied" "writing outside the job dir: EACCES"
[[ -e $AF_TMP/escape.txt ]] && af_fail "the step wrote $AF_TMP/escape.txt"
af_assert_contains "$(cat "$AF_TMP/a.out")" "TMPDIR-OK $W/jobs/" "the step's private TMPDIR is in its job dir"

# --- the agent and job B are unaffected -------------------------------------------
s_b_running || af_fail "job B stopped while A ran"
touch "$(dirname "$b_file")/go"
rc=0
wait "$B_PID" || rc=$?
af_assert_eq 0 "$rc" "job B finishes and publishes"
af_tag_digest confine:b >/dev/null || af_fail "confine:b not published"

# --- finding 8: a setsid daemon (one in the job dir, one that cd'd to /) does
# not outlive its job ------------------------------------------------------------------
mkdir -p "$AF_TMP/ctx-d"
cat >"$AF_TMP/ctx-d/archfarm.yaml" <<'YAML'
build:
  run: |
    setsid sh -c 'exec sleep 300' </dev/null >/dev/null 2>&1 &
    (cd / && setsid sh -c 'exec sleep 301' </dev/null >/dev/null 2>&1 &)
    mkdir -p out && echo d >out/d.txt
image:
  copy:
    - {src: out/d.txt, dest: /d.txt}
YAML
rc=0
af_build "$AF_TMP/d.out" --platform linux/amd64 -t "$AF_REGISTRY/confine:d" --push "$AF_TMP/ctx-d" || rc=$?
af_assert_eq 0 "$rc" "the build that leaves daemons behind succeeds"
s_daemons() { pgrep -f '^sleep 30[01]$' | while read -r p; do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -q "^ARCHFARM_JOB_DIR=$W/jobs/" && echo "$p"
done; }
s_no_daemons() { [[ -z $(s_daemons) ]]; }
af_wait_until "$(af_time_bound 3 2)" "the job's setsid daemons to be killed" s_no_daemons
printf 'ok: no daemon of the job survives it\n' >&2
af_archfarm inspect node-amd64 >"$AF_TMP/inspect.out" 2>&1 || af_fail "inspect: $(cat "$AF_TMP/inspect.out")"
af_assert_contains "$(cat "$AF_TMP/inspect.out")" "Confinement: native build steps confined (Landlock ABI" \
    "archfarm inspect shows the confinement"
af_archfarm inspect --format json node-amd64 >"$AF_TMP/inspect.json" 2>/dev/null
af_assert_match "$(jq -r .confinement "$AF_TMP/inspect.json")" '^landlock-abi-[0-9]+$' \
    "and so does its JSON"
af_agent_stop node-amd64

# --- control: the same reads succeed on an unconfined agent ---------------------------
printf 'max_jobs: 2\ncert: %s\nconfine: "off"\n' "$C/keys/agent.key" >"$C/agent.yaml"
af_agent_start node-off linux/amd64 --config "$C/agent.yaml"
af_assert_file_contains "$AF_TMP/agents/node-off/stderr.log" "NOT confined" \
    "confine: off is logged at start"
af_inventory_write "$AF_TMP/inventory.yaml"
rc=0
af_build "$AF_TMP/off.out" --platform linux/amd64 --build-arg "TARGETS=$C/keys/agent.key_secret" \
    --build-arg "WORKDIR=$W" --build-arg "ESCAPE=$AF_TMP/escape.txt" \
    -t "$AF_REGISTRY/confine:off" --push "$AF_TMP/ctx-a" || rc=$?
af_assert_eq 0 "$rc" "control build on the unconfined agent"
af_assert_contains "$(cat "$AF_TMP/off.out")" "READ-OK $C/keys/agent.key_secret" \
    "control: unconfined, the secret key IS readable (so the test can fail)"
af_archfarm inspect node-off >"$AF_TMP/inspect-off.out" 2>&1 || true
af_assert_contains "$(cat "$AF_TMP/inspect-off.out")" "Confinement: off (confine: off): native build steps are unconfined" \
    "archfarm inspect says an unconfined agent is unconfined"

# --- confine: required starts where Landlock exists; a bad mode is refused -----------
rc=0
"$AF_BIN/archfarm-agent" --confine bogus --insecure --platform linux/amd64 \
    --workdir "$AF_TMP/w2" --listen "tcp://127.0.0.1:$(af_free_port)" >/dev/null 2>"$AF_TMP/bogus.err" || rc=$?
af_assert_eq 2 "$rc" "--confine bogus exits 2"
af_assert_contains "$(cat "$AF_TMP/bogus.err")" "confine must be auto, required or off" "and says why"

echo "PASS: test_confine"
