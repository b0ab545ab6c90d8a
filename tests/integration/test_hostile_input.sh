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
#      an infra failure on every node, exit 1). Not covered: an absolute
#      symlink in the context (still refused by the agent only).
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

echo "PASS: test_hostile_input"
