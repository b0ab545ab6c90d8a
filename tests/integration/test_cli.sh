#!/usr/bin/env bash
# test_cli -- what a user sees from the coordinator's commands besides build
# success: usage errors (exit 2), inventory check/list, ls with a ready and an
# unreachable node, inspect, "no node for a platform" (exit 3, before any
# work), imagetools inspect of a 3-platform index, --help and --version.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
A="$AF_BIN/archfarm"
T=$AF_TMP

# s_expect RC WHAT CMD...: runs CMD, asserts its exit status, leaves its
# stdout+stderr in $OUT.
s_expect() {
    local want=$1 what=$2 rc
    shift 2
    af_run_rc rc timeout -k 5 60 "$@"
    OUT=$(cat "$AF_TMP/last.out")
    if [[ $rc != "$want" ]]; then
        af_fail "$what: exit $rc, expected $want; output:
$OUT"
    fi
    printf 'ok: %s (exit %s)\n' "$what" "$rc" >&2
}

# --- --help / --version --------------------------------------------------------
s_expect 0 "archfarm --version" "$A" --version
af_assert_contains "$OUT" "0.1.0" "archfarm --version prints the version"
s_expect 0 "archfarm-agent --version" "$AF_BIN/archfarm-agent" --version
af_assert_contains "$OUT" "0.1.0" "archfarm-agent --version prints the version"

s_expect 0 "archfarm --help" "$A" --help
for w in build ls inspect imagetools inventory; do
    af_assert_contains "$OUT" "$w" "archfarm --help lists '$w'"
done
s_expect 0 "archfarm build --help" "$A" build --help
for w in --platform --push --metadata-file --progress --build-arg --insecure-registry -t -f; do
    af_assert_contains "$OUT" "$w" "build --help mentions $w"
done
s_expect 0 "archfarm ls --help" "$A" ls --help
s_expect 0 "archfarm inspect --help" "$A" inspect --help
af_assert_contains "$OUT" "NODE" "inspect --help names its NODE argument"
s_expect 0 "archfarm imagetools inspect --help" "$A" imagetools inspect --help
af_assert_contains "$OUT" "--raw" "imagetools inspect --help mentions --raw"
IMAGETOOLS_HELP=$OUT
s_expect 0 "archfarm inventory check --help" "$A" inventory check --help
s_expect 0 "archfarm inventory list --help" "$A" inventory list --help
af_assert_contains "$OUT" "--format" "inventory list --help mentions --format"
s_expect 0 "archfarm-agent --help" "$AF_BIN/archfarm-agent" --help
for w in --config --listen --platform --workdir --max-jobs --executor --name --insecure; do
    af_assert_contains "$OUT" "$w" "archfarm-agent --help mentions $w"
done

# --- usage errors: exit 2 with a message ----------------------------------------
s_expect 2 "archfarm with no command" "$A"
[[ -n $OUT ]] || af_fail "archfarm with no command printed nothing"
s_expect 2 "unknown command" "$A" frobnicate
af_assert_contains "$OUT" "frobnicate" "unknown command is named"
s_expect 2 "unknown option" "$A" build --no-such-option .
af_assert_contains "$OUT" "no-such-option" "unknown option is named"
s_expect 2 "build without a context" "$A" build --platform linux/amd64
s_expect 2 "bad --progress" "$A" build --progress sideways .
af_assert_contains "$OUT" "sideways" "bad --progress value is named"
s_expect 2 "bad --platform" "$A" build --platform 'not a/plat/form/at/all' .
s_expect 2 "bad -t reference" "$A" build -t 'UPPER CASE!!' .
af_assert_contains "$OUT" "UPPER CASE!!" "bad reference is named"
s_expect 2 "missing inventory file" "$A" -i "$T/does-not-exist.yaml" ls
af_assert_contains "$OUT" "does-not-exist.yaml" "missing inventory is named"

# --- inventory check / list --------------------------------------------------------
cat >"$T/good.yaml" <<'EOF'
all:
  vars:
    archfarm_max_jobs: 2
  children:
    archfarm_agents:
      vars:
        archfarm_insecure: true
      children:
        pis:
          vars:
            archfarm_platforms: [linux/arm/v7]
            archfarm_max_jobs: 1
          hosts:
            pi[01:03]:
        big:
          hosts:
            big1:
              ansible_host: 10.0.0.5
              archfarm_port: 7500
              archfarm_platforms: [linux/amd64, aarch64]
              archfarm_labels: {rack: r1}
    others:
      hosts:
        db1:
EOF
s_expect 0 "inventory check on a good file" "$A" inventory check "$T/good.yaml"
s_expect 0 "inventory list --format json" "$A" inventory list --format json "$T/good.yaml"
printf '%s\n' "$OUT" >"$T/list.json"
jq -e 'type == "array"' "$T/list.json" >/dev/null || af_fail "inventory list is not a JSON array: $OUT"
af_assert_eq "big1,pi01,pi02,pi03" "$(jq -r '[.[].name] | sort | join(",")' "$T/list.json")" \
    "inventory list: hosts of archfarm_agents, range expanded, others ignored"
af_assert_eq "tcp://pi02:7420" "$(jq -r '.[] | select(.name == "pi02") | .endpoint' "$T/list.json")" \
    "default endpoint tcp://NAME:7420"
af_assert_eq "tcp://10.0.0.5:7500" "$(jq -r '.[] | select(.name == "big1") | .endpoint' "$T/list.json")" \
    "endpoint from ansible_host + archfarm_port"
af_assert_eq 1 "$(jq -r '.[] | select(.name == "pi03") | .max_jobs' "$T/list.json")" \
    "child-group var overrides all var (max_jobs)"
af_assert_eq 2 "$(jq -r '.[] | select(.name == "big1") | .max_jobs' "$T/list.json")" \
    "all var applies where nothing overrides it"
af_assert_eq '["linux/amd64","linux/arm64"]' "$(jq -c '.[] | select(.name == "big1") | .platforms' "$T/list.json")" \
    "platforms normalised (aarch64 -> linux/arm64)"
af_assert_eq true "$(jq -r '.[] | select(.name == "pi01") | .insecure' "$T/list.json")" "insecure inherited"
af_assert_contains "$(jq -c '.[] | select(.name == "big1") | .labels' "$T/list.json")" "r1" "labels listed"

printf 'all:\n  children:\n    archfarm_agents:\n      hosts:\n        n1:\n          archfarm_platforms: [linux/amd64]\n         archfarm_insecure: true\n' \
    >"$T/badindent.yaml"
s_expect 2 "inventory check: bad indentation" "$A" inventory check "$T/badindent.yaml"
af_assert_match "$OUT" "$T/badindent.yaml:[0-9]+:[0-9]+: " "bad indentation reported as FILE:LINE:COL:"
af_assert_match "$OUT" "$T/badindent.yaml:(6|7):" "bad indentation reported at the offending line"

cat >"$T/badjobs.yaml" <<'EOF'
all:
  children:
    archfarm_agents:
      vars:
        archfarm_insecure: true
      hosts:
        n1:
          archfarm_platforms: [linux/amd64]
          archfarm_max_jobs: lots
EOF
s_expect 2 "inventory check: bad max_jobs" "$A" inventory check "$T/badjobs.yaml"
af_assert_match "$OUT" "$T/badjobs.yaml:9:[0-9]+: " "bad max_jobs reported as FILE:9:COL:"
af_assert_contains "$OUT" "max_jobs" "bad max_jobs message names the variable"
ARCHFARM_INVENTORY="$T/badjobs.yaml" s_expect 2 "ls with \$ARCHFARM_INVENTORY pointing at a bad file" "$A" ls

# --- a live farm: ls, inspect, no node for a platform --------------------------------
af_farm_registry_start
af_agent_start node-amd64 linux/amd64
af_agent_start node-arm64 linux/arm64
af_agent_start node-armv7 linux/arm/v7
dead_port=$(af_free_port)
af_inventory_add_host node-dead "tcp://127.0.0.1:$dead_port" linux/amd64
af_inventory_write "$T/inventory.yaml"

af_run_rc rc af_archfarm ls
OUT=$(cat "$AF_TMP/last.out")
printf '%s\n' "$OUT" >&2
af_assert_eq 3 "$rc" "ls exits 3 when a node (node-dead) is not ready"
af_assert_match "$(grep -w node-amd64 <<<"$OUT" || true)" 'ready' "ls: node-amd64 is ready"
af_assert_match "$(grep -w node-amd64 <<<"$OUT" || true)" 'linux/amd64' "ls: node-amd64 platforms"
af_assert_match "$(grep -w node-amd64 <<<"$OUT" || true)" "tcp://127.0.0.1:${AF_AGENT_PORT[node-amd64]}" "ls: node-amd64 endpoint"
af_assert_match "$(grep -w node-dead <<<"$OUT" || true)" 'unreachable' "ls: node-dead is unreachable"
if grep -w node-dead <<<"$OUT" | grep -qw ready; then af_fail "ls reports the dead node ready"; fi
af_assert_match "$OUT" "archfarm: warning: plaintext transport \(archfarm_insecure\) to 4 nodes \(node-amd64, .*\): not authenticated, not encrypted" \
    "every run that talks to plaintext nodes warns, naming them"

# inventory check --probe: every node must answer and build what is declared
af_run_rc rc "$A" inventory check --probe "$AF_INVENTORY"
af_assert_eq 3 "$rc" "check --probe exits 3 when a node does not answer"
af_assert_match "$(cat "$AF_TMP/last.out")" 'node-dead: unreachable' "check --probe names the silent node"
cat >"$T/probe.yaml" <<YAML
archfarm_agents:
  vars: {archfarm_insecure: true, ansible_host: 127.0.0.1}
  hosts:
    node-amd64: {archfarm_platforms: [linux/amd64], archfarm_port: ${AF_AGENT_PORT[node-amd64]}}
    node-arm64: {archfarm_platforms: [linux/arm64, linux/riscv64], archfarm_port: ${AF_AGENT_PORT[node-arm64]}}
YAML
af_run_rc rc "$A" inventory check --probe "$T/probe.yaml"
af_assert_eq 3 "$rc" "check --probe exits 3 when a node does not build a declared platform"
af_assert_contains "$(cat "$AF_TMP/last.out")" "node-arm64: the inventory declares linux/riscv64 but the agent does not build it" \
    "check --probe names the missing platform"
sed -i 's|, linux/riscv64||' "$T/probe.yaml"
s_expect 0 "inventory check --probe on a farm that answers as declared" "$A" inventory check --probe "$T/probe.yaml"
s_expect 2 "--probe is for check only" "$A" inventory list --probe "$T/probe.yaml"

s_expect 0 "inspect node-arm64" "$A" -i "$AF_INVENTORY" inspect node-arm64
af_assert_contains "$OUT" "linux/arm64" "inspect shows the platform"
af_assert_contains "$OUT" "tcp://127.0.0.1:${AF_AGENT_PORT[node-arm64]}" "inspect shows the endpoint"
af_assert_contains "$OUT" "ready" "inspect shows the status"
af_run_rc rc af_archfarm inspect no-such-node
OUT=$(cat "$AF_TMP/last.out")
[[ $rc != 0 ]] || af_fail "inspect of an unknown node exited 0"
af_assert_contains "$OUT" "no-such-node" "inspect of an unknown node names it"

cp -r "$AF_SOURCE_DIR/tests/integration/fixtures/cross-c" "$T/ctx"
rc=0
af_build "$T/s390x.out" --platform linux/amd64,linux/s390x -t "$AF_REGISTRY/none:1" --push "$T/ctx" || rc=$?
OUT=$(cat "$T/s390x.out")
af_assert_eq 3 "$rc" "no node for linux/s390x: exit 3"
af_assert_contains "$OUT" "linux/s390x" "the message names the platform"
af_assert_eq '[]' "$(curl -fsS "http://$AF_REGISTRY/v2/_catalog" | jq -c '.repositories // []')" \
    "nothing was pushed"
left=$(find "$AF_TMP/agents/node-amd64/work" -type f \( -name '*.tar' -o -path '*/jobs/*' \) | wc -l)
af_assert_eq 0 "$left" "node-amd64 received no context and ran no job"

rc=0
af_build "$T/tworepo.out" --platform linux/amd64 -t "$AF_REGISTRY/one:1" -t "$AF_REGISTRY/two:1" --push "$T/ctx" || rc=$?
af_assert_eq 2 "$rc" "tags in two different repositories are refused (exit 2)"

# --- imagetools inspect of a 3-platform index ------------------------------------------
rc=0
af_build "$T/build.out" --platform linux/amd64,linux/arm64,linux/arm/v7 -t "$AF_REGISTRY/app:cli" --push "$T/ctx" || rc=$?
af_assert_eq 0 "$rc" "3-platform build for imagetools"
IT=(imagetools inspect)
if [[ $IMAGETOOLS_HELP == *--insecure-registry* ]]; then IT+=(--insecure-registry "$AF_REGISTRY"); fi
s_expect 0 "imagetools inspect" "$A" "${IT[@]}" "$AF_REGISTRY/app:cli"
printf '%s\n' "$OUT" >&2
for p in linux/amd64 linux/arm64 linux/arm/v7; do
    af_assert_match "$OUT" "$p([^/]|\$)" "imagetools inspect lists $p"
done
for d in $(af_manifest_raw app:cli | jq -r '.manifests[].digest'); do
    af_assert_contains "$OUT" "$d" "imagetools inspect shows child $d"
done
rc=0
timeout 60 "$A" "${IT[@]}" --raw "$AF_REGISTRY/app:cli" >"$T/raw.out" 2>"$T/raw.err" || rc=$?
af_assert_eq 0 "$rc" "imagetools inspect --raw"
af_manifest_raw app:cli >"$T/raw.want"
cmp -s "$T/raw.want" "$T/raw.out" || af_fail "imagetools inspect --raw did not print the exact index bytes:
$(head -c 600 "$T/raw.out")"
printf 'ok: imagetools inspect --raw prints the exact index bytes\n' >&2
child=$(af_manifest_raw app:cli | jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest')
s_expect 0 "imagetools inspect of a single manifest" "$A" "${IT[@]}" "$AF_REGISTRY/app@$child"
af_assert_contains "$OUT" "linux/arm64" "a manifest's config platform is shown"
af_run_rc rc timeout 60 "$A" "${IT[@]}" "$AF_REGISTRY/app:missing"
af_assert_ne 0 "$rc" "imagetools inspect of a missing tag fails"
af_assert_contains "$(cat "$AF_TMP/last.out")" "missing" "and names the reference"

echo "PASS: test_cli"
