#!/usr/bin/env bash
# test_security_curve -- a CURVE agent admits only authorised coordinators,
# takes new keys without a restart, and no secret reaches a log or a disk.
#
# One agent with --cert (from `archfarm keygen`) and --authorized-keys, a
# registry with htpasswd auth (so the coordinator sends credentials, which
# it does only over CURVE), and a recipe whose build step writes a marker
# file to an absolute path this test owns (and the job dir's mode into it):
#   0. the agent refuses to start without --cert, without --authorized-keys,
#      or with a certificate that holds no secret key (exit 2);
#   1. the authorised coordinator builds and publishes; the job dir was 0700;
#   2. an unauthorised key gets `unauthorized`, exit 3, quickly, and the
#      agent ran nothing (no marker);
#   3. a plaintext coordinator (archfarm_insecure: true) gets the same;
#   4. copying the key into the authorized-keys dir lets it build, same
#      agent pid; removing it revokes it again;
#   5. the registry password (and its base64 form) is in no agent or
#      coordinator output (debug logging on) and nowhere in the workdir.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"
# shellcheck source=tests/lib/registry.sh
source "$AF_SOURCE_DIR/tests/lib/registry.sh"

af_farm_init
export ARCHFARM_LOG=debug # the strongest check that secrets stay out of logs
USER_=afuser
PASS="af-pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
PASS_B64=$(printf '%s:%s' "$USER_" "$PASS" | base64 -w0)
AF_REGISTRY_STARTED=1
af_registry_start_htpasswd "$AF_TMP/registry" "$USER_" "$PASS" || af_fail "cannot start the htpasswd registry"
af_log "registry (htpasswd) at $AF_REGISTRY"
export DOCKER_CONFIG=$AF_TMP/docker
mkdir -p "$DOCKER_CONFIG"
jq -n --arg r "$AF_REGISTRY" --arg a "$PASS_B64" '{auths: {($r): {auth: $a}}}' >"$DOCKER_CONFIG/config.json"
chmod 600 "$DOCKER_CONFIG/config.json"

# --- keys -------------------------------------------------------------------
K=$AF_TMP/keys
mkdir -p "$K"
server_key=$("$AF_BIN/archfarm" keygen --name agent "$K/agent" 2>/dev/null)
"$AF_BIN/archfarm" keygen --name coord "$K/coord" >/dev/null 2>&1
"$AF_BIN/archfarm" keygen --name late "$K/late" >/dev/null 2>&1
mkdir -p "$K/authorized"
cp "$K/coord/coord.key" "$K/authorized/"
af_assert_eq 40 "${#server_key}" "keygen prints a 40-character server key"

# --- 0. refusals at start -------------------------------------------------------
A=$AF_TMP/agents/sec1
mkdir -p "$A/work" "$K/pubonly"
cp "$K/agent/agent.key" "$K/pubonly/"
s_agent_try() { # flags...: runs the agent, which must exit at once
    timeout -k 5 20 "$AF_BIN/archfarm-agent" --name sec1 --listen "tcp://127.0.0.1:*" \
        --platform linux/amd64 --workdir "$A/work" "$@"
}
af_run_rc rc s_agent_try
af_assert_eq 2 "$rc" "no --insecure and no --cert: exit 2"
af_assert_contains "$(cat "$AF_TMP/last.out")" "--cert" "the refusal names --cert"
af_run_rc rc s_agent_try --cert "$K/agent/agent.key"
af_assert_eq 2 "$rc" "--cert without --authorized-keys: exit 2"
af_assert_contains "$(cat "$AF_TMP/last.out")" "--authorized-keys" "the refusal names --authorized-keys"
af_run_rc rc s_agent_try --cert "$K/pubonly/agent.key" --authorized-keys "$K/authorized"
af_assert_eq 2 "$rc" "a public-only certificate: exit 2"
af_assert_contains "$(cat "$AF_TMP/last.out")" "no secret key" "the refusal says the secret key is missing"
af_run_rc rc s_agent_try --cert "$K/agent/agent.key" --authorized-keys "$K/nonexistent"
af_assert_eq 2 "$rc" "a missing authorized-keys dir: exit 2"

# --- the CURVE agent --------------------------------------------------------------
port=$(af_free_port)
"$AF_BIN/archfarm-agent" --name sec1 --listen "tcp://127.0.0.1:$port" --platform linux/amd64 \
    --workdir "$A/work" --cert "$K/agent/agent.key_secret" --authorized-keys "$K/authorized" \
    --confine off >"$A/stdout.log" 2>"$A/stderr.log" &
agent_pid=$!
AF_AGENT_NAMES+=(sec1) # farm.sh's EXIT trap stops it and checks its exit status
AF_AGENT_PID[sec1]=$agent_pid
AF_AGENT_DIR[sec1]=$A
af_wait_until 20 "the CURVE agent to listen" grep -qs listening "$A/stderr.log"
log=$(cat "$A/stderr.log")
af_assert_contains "$log" "$server_key" "the agent logs its public server key"
af_assert_contains "$log" "ZAP domain archfarm enforced" "the agent enforces its ZAP domain"
if grep -q INSECURE "$A/stderr.log"; then af_fail "a CURVE agent logged the --insecure warning"; fi

s_inventory() { # FILE INSECURE
    cat >"$1" <<EOF
all:
  children:
    archfarm_agents:
      hosts:
        sec1:
          ansible_host: 127.0.0.1
          archfarm_endpoint: "tcp://127.0.0.1:$port"
          archfarm_platforms: [linux/amd64]
          archfarm_server_key: "$server_key"
          archfarm_insecure: $2
EOF
}
s_inventory "$AF_TMP/curve.yaml" false
s_inventory "$AF_TMP/plain.yaml" true

# the build step leaves a marker (holding its job dir's mode) where we look
mkdir -p "$AF_TMP/ctx" "$AF_TMP/marks"
cat >"$AF_TMP/ctx/archfarm.yaml" <<'EOF'
build:
  run: |
    stat -c %a .. > "$MARKER"
    mkdir -p out && echo "built for $TARGETPLATFORM" > out/hello.txt
image:
  from: scratch
  copy:
    - {src: out/hello.txt, dest: /hello.txt}
EOF

s_build() { # INVENTORY CERT MARKER TAG OUT: the coordinator's exit status
    local rc=0 t0=$SECONDS
    ARCHFARM_CLIENT_CERT=$2 timeout -k 5 120 "$AF_BIN/archfarm" -i "$1" build --progress plain \
        --insecure-registry "$AF_REGISTRY" --platform linux/amd64 --build-arg "MARKER=$3" \
        -t "$AF_REGISTRY/sec/app:$4" --push "$AF_TMP/ctx" >"$5" 2>&1 || rc=$?
    BUILD_SECONDS=$((SECONDS - t0))
    return "$rc"
}
s_tag_exists() {
    curl -fsS -u "$USER_:$PASS" -o /dev/null \
        -H 'Accept: application/vnd.oci.image.index.v1+json' \
        "http://$AF_REGISTRY/v2/sec/app/manifests/$1"
}

# --- 1. the authorised coordinator -------------------------------------------------
rc=0
s_build "$AF_TMP/curve.yaml" "$K/coord/coord.key" "$AF_TMP/marks/authorised" v1 "$AF_TMP/authorised.out" || rc=$?
cat "$AF_TMP/authorised.out" >&2
af_assert_eq 0 "$rc" "the authorised coordinator builds and publishes over CURVE"
s_tag_exists v1 || af_fail "sec/app:v1 is not in the registry"
printf 'ok: sec/app:v1 is in the registry\n' >&2
af_assert_eq 700 "$(cat "$AF_TMP/marks/authorised")" "the build step's job dir is mode 0700"
af_wait_until 20 "the job dir to go" af_agent_no_job_dirs sec1

# --- 2. an unauthorised key --------------------------------------------------------------
rc=0
s_build "$AF_TMP/curve.yaml" "$K/late/late.key" "$AF_TMP/marks/unauthorised" v2 "$AF_TMP/unauth.out" || rc=$?
out=$(cat "$AF_TMP/unauth.out")
printf '%s\n' "$out" >&2
af_assert_eq 3 "$rc" "an unauthorised coordinator exits 3"
af_assert_contains "$out" "unauthorized" "it is told the node is unauthorized"
af_assert_contains "$out" "sec1" "the message names the node"
((BUILD_SECONDS <= 15)) || af_fail "the refusal took ${BUILD_SECONDS}s: that looks like a hang"
printf 'ok: refused in %ss\n' "$BUILD_SECONDS" >&2
[[ ! -e $AF_TMP/marks/unauthorised ]] || af_fail "the agent ran the unauthorised build step"
printf 'ok: no marker: the agent ran nothing for the unauthorised key\n' >&2
af_run_rc rc env ARCHFARM_CLIENT_CERT="$K/late/late.key" "$AF_BIN/archfarm" -i "$AF_TMP/curve.yaml" ls
af_assert_match "$(cat "$AF_TMP/last.out")" '^sec1 .*unauthorized' "ls shows sec1 unauthorized"
s_tag_exists v2 && af_fail "sec/app:v2 exists after a refused build"

# without $ARCHFARM_CLIENT_CERT the coordinator uses ~/.config/archfarm/client_secret
mkdir -p "$AF_TMP/home/.config/archfarm"
cp "$K/coord/coord.key_secret" "$AF_TMP/home/.config/archfarm/client_secret"
af_run_rc rc env -u ARCHFARM_CLIENT_CERT HOME="$AF_TMP/home" "$AF_BIN/archfarm" -i "$AF_TMP/curve.yaml" ls
af_assert_match "$(cat "$AF_TMP/last.out")" '^sec1 .*ready' "the default client cert ~/.config/archfarm/client_secret is used"
af_run_rc rc env -u ARCHFARM_CLIENT_CERT HOME="$AF_TMP/nohome" "$AF_BIN/archfarm" -i "$AF_TMP/curve.yaml" ls
af_assert_match "$(cat "$AF_TMP/last.out")" 'client_secret' "without any client cert the message says where one goes"

# --- 3. a plaintext coordinator --------------------------------------------------------
rc=0
s_build "$AF_TMP/plain.yaml" "$K/coord/coord.key" "$AF_TMP/marks/plaintext" v3 "$AF_TMP/plain.out" || rc=$?
out=$(cat "$AF_TMP/plain.out")
printf '%s\n' "$out" >&2
af_assert_eq 3 "$rc" "a plaintext coordinator exits 3"
af_assert_contains "$out" "unauthorized" "it gets the same refusal"
((BUILD_SECONDS <= 15)) || af_fail "the refusal took ${BUILD_SECONDS}s: that looks like a hang"
[[ ! -e $AF_TMP/marks/plaintext ]] || af_fail "the agent ran the plaintext coordinator's build step"
printf 'ok: no marker: the agent ran nothing for the plaintext coordinator\n' >&2

# --- 4. a key added while the agent runs ---------------------------------------------------
cp "$K/late/late.key" "$K/authorized/"
af_wait_until 10 "the agent to reload its keys" grep -q 'coordinator key(s) .*(reloaded)' "$A/stderr.log"
rc=0
s_build "$AF_TMP/curve.yaml" "$K/late/late.key" "$AF_TMP/marks/late" v4 "$AF_TMP/late.out" || rc=$?
cat "$AF_TMP/late.out" >&2
af_assert_eq 0 "$rc" "the newly authorised key builds without an agent restart"
[[ -e $AF_TMP/marks/late ]] || af_fail "the build step did not run for the newly authorised key"
kill -0 "$agent_pid" 2>/dev/null || af_fail "the agent is gone"
af_assert_eq "$agent_pid" "${AF_AGENT_PID[sec1]}" "the same agent process (pid $agent_pid) served it"
af_assert_eq 1 "$(grep -c 'listening on' "$A/stderr.log")" "the agent started once"
s_tag_exists v4 || af_fail "sec/app:v4 is not in the registry"
rm "$K/authorized/late.key"
s_last_key_count() { # N: the agent's latest key-set line says N keys
    grep 'authorized keys:' "$A/stderr.log" | tail -n 1 | grep -q "authorized keys: $1 coordinator"
}
af_wait_until 10 "the agent to drop the removed key" s_last_key_count 1
af_run_rc rc env ARCHFARM_CLIENT_CERT="$K/late/late.key" "$AF_BIN/archfarm" -i "$AF_TMP/curve.yaml" ls
af_assert_match "$(cat "$AF_TMP/last.out")" '^sec1 .*unauthorized' "a removed key is refused again"

# --- 5. no secret in any log or file ---------------------------------------------------------
af_wait_until 20 "the job dirs to go" af_agent_no_job_dirs sec1
af_agent_stop sec1 || af_fail "the agent did not stop cleanly"
for secret in "$PASS" "$PASS_B64"; do
    hits=$(grep -rlF -- "$secret" "$A" "$AF_TMP"/*.out 2>/dev/null || true)
    [[ -z $hits ]] || af_fail "a registry secret was found in: $hits"
done
printf 'ok: the registry password (plain and base64) is in no log and nowhere in the workdir\n' >&2
af_assert_match "$(cat "$AF_TMP/authorised.out")" 'sec/app' "(the checked output is the real build's)"
leftover=$(find "$A/work" -name 'auth*.json' -o -name '*secret*' | grep -v '/\.curve-keys' || true)
[[ -z $leftover ]] || af_fail "credential files left in the workdir: $leftover"
[[ -z $(find "$A/work" -maxdepth 1 -name '.curve-keys-*') ]] || af_fail "the key snapshot was left behind"
printf 'ok: no credential or key files left in the workdir\n' >&2

echo "PASS: test_security_curve"
