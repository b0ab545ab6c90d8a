#!/usr/bin/env bash
# test_hostile_input -- bad values a user can give, refused before any work
# (issue 12, findings 6 and 7).
#
#   6. archfarm-agent --listen tcp://*:99999 (and -1, 0, and the same in
#      agent.yaml's listen:) exits 2 naming the port range, where it used to
#      listen on 34463 / 65535; tcp://127.0.0.1:* (any free port) still works.
#   7. archfarm build --metadata-file in a missing directory, or naming a
#      directory, exits 2 at once with the path, before any node is asked
#      (the inventory's only node is a dead port: without the check the
#      build gets as far as "no node", exit 3).
#   4. a native recipe with an unknown key (comand:) or an empty archfarm.yaml
#      exits 2 naming FILE:LINE:COL before any node is asked (it used to be
#      an infra failure on every node, exit 1). A context the agents would
#      refuse to extract (a symlink to an absolute path, or one climbing out
#      of the context) exits 2 naming the entry, before the registry is
#      asked (it is a dead address: asking it would be exit 3), where it used
#      to fail on every node; a relative link inside the context passes the
#      check (and then meets the dead registry: exit 3).
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init

# --- 6. the agent's listen port -------------------------------------------------
s_agent_rc() { # OUT FLAGS...: the agent's exit status (it must exit at once)
    local out=$1 rc=0
    shift
    timeout -k 5 20 "$AF_BIN/archfarm-agent" --insecure --platform linux/amd64 \
        --workdir "$AF_TMP/w" "$@" >/dev/null 2>"$out" || rc=$?
    echo "$rc"
}
for p in 99999 -1 0 7420x; do
    rc=$(s_agent_rc "$AF_TMP/l.err" --listen "tcp://127.0.0.1:$p")
    af_assert_eq 2 "$rc" "--listen tcp://127.0.0.1:$p exits 2"
    af_assert_contains "$(cat "$AF_TMP/l.err")" "--listen: listen: the port must be a number from 1 to 65535" \
        "and names the range"
done
printf 'listen: "tcp://*:99999"\n' >"$AF_TMP/agent.yaml"
rc=$(s_agent_rc "$AF_TMP/y.err" --config "$AF_TMP/agent.yaml")
af_assert_eq 2 "$rc" "listen: tcp://*:99999 in agent.yaml exits 2"
af_assert_contains "$(cat "$AF_TMP/y.err")" "$AF_TMP/agent.yaml:1:9: listen: the port must be" \
    "and names the file, line and column"

# --- 7. --metadata-file checked before any work --------------------------------------
port=$(af_free_port) # nobody listens there
cat >"$AF_TMP/inventory.yaml" <<YAML
all:
  children:
    archfarm_agents:
      hosts:
        dead:
          ansible_host: 127.0.0.1
          archfarm_port: $port
          archfarm_platforms: [linux/amd64]
          archfarm_insecure: true
YAML
mkdir -p "$AF_TMP/ctx" "$AF_TMP/adir"
printf 'build:\n  run: "true"\n' >"$AF_TMP/ctx/archfarm.yaml"
for m in "$AF_TMP/missing/m.json" "$AF_TMP/adir"; do
    rc=0
    t0=$(af_now)
    timeout -k 5 60 "$AF_BIN/archfarm" -i "$AF_TMP/inventory.yaml" build --platform linux/amd64 \
        -t 127.0.0.1:1/x:y --push --metadata-file "$m" "$AF_TMP/ctx" >"$AF_TMP/m.out" 2>&1 || rc=$?
    took=$(af_elapsed "$t0")
    cat "$AF_TMP/m.out" >&2
    af_assert_eq 2 "$rc" "--metadata-file $m: exit 2"
    af_assert_contains "$(cat "$AF_TMP/m.out")" "--metadata-file $m:" "the error names the path"
    grep -q "packing context" "$AF_TMP/m.out" && af_fail "work started before the check"
    af_log "refused in $took s"
done
[[ -z $(ls "$AF_TMP/adir") ]] || af_fail "files left in $AF_TMP/adir"

# --- 4. a bad native recipe is refused by the coordinator ----------------------------
s_recipe_rc() { # OUT: archfarm build on $AF_TMP/bad against the dead node
    local rc=0
    timeout -k 5 60 "$AF_BIN/archfarm" -i "$AF_TMP/inventory.yaml" build --platform linux/amd64 \
        -t 127.0.0.1:1/x:y --push "$AF_TMP/bad" >"$1" 2>&1 || rc=$?
    echo "$rc"
}
mkdir -p "$AF_TMP/bad"
printf 'build:\n  comand: make\n' >"$AF_TMP/bad/archfarm.yaml"
rc=$(s_recipe_rc "$AF_TMP/r1.out")
cat "$AF_TMP/r1.out" >&2
af_assert_eq 2 "$rc" "a recipe with comand: exits 2"
af_assert_contains "$(cat "$AF_TMP/r1.out")" "archfarm.yaml:2:3: build: unknown key \"comand\"" \
    "the error names the file, line, column and key"
: >"$AF_TMP/bad/archfarm.yaml"
rc=$(s_recipe_rc "$AF_TMP/r2.out")
af_assert_eq 2 "$rc" "an empty archfarm.yaml exits 2"
af_assert_contains "$(cat "$AF_TMP/r2.out")" "archfarm.yaml:1:1: empty recipe" "and says it is empty"
grep -q "packing context" "$AF_TMP/r1.out" "$AF_TMP/r2.out" && af_fail "work started before the check"


# --- 4. a context the agents would refuse is refused by the coordinator ----------------
mkdir -p "$AF_TMP/lctx/sub"
printf 'build:\n  run: "true"\n' >"$AF_TMP/lctx/archfarm.yaml"
s_context_rc() { # OUT
    local rc=0
    timeout -k 5 60 "$AF_BIN/archfarm" -i "$AF_TMP/inventory.yaml" build --platform linux/amd64 \
        -t 127.0.0.1:1/x:y --push "$AF_TMP/lctx" >"$1" 2>&1 || rc=$?
    echo "$rc"
}
ln -s /etc/passwd "$AF_TMP/lctx/sub/passwd"
rc=$(s_context_rc "$AF_TMP/c1.out")
cat "$AF_TMP/c1.out" >&2
af_assert_eq 2 "$rc" "an absolute symlink in the context exits 2"
af_assert_contains "$(cat "$AF_TMP/c1.out")" \
    'context: "sub/passwd": symlink target "/etc/passwd" is absolute' "the error names the entry and target"
rm "$AF_TMP/lctx/sub/passwd"
ln -s ../../outside "$AF_TMP/lctx/sub/esc"
rc=$(s_context_rc "$AF_TMP/c2.out")
af_assert_eq 2 "$rc" "a symlink climbing out of the context exits 2"
af_assert_contains "$(cat "$AF_TMP/c2.out")" 'context: "sub/esc": symlink target "../../outside" escapes the context' \
    "the error names the entry"
grep -q "checking that\|cannot push" "$AF_TMP/c1.out" "$AF_TMP/c2.out" &&
    af_fail "the registry was asked before the context was checked"
rm "$AF_TMP/lctx/sub/esc"
ln -s ../archfarm.yaml "$AF_TMP/lctx/sub/ok"
rc=$(s_context_rc "$AF_TMP/c3.out")
af_assert_eq 3 "$rc" "a relative link inside the context passes the check (then the dead registry: 3)"

echo "PASS: test_hostile_input"
