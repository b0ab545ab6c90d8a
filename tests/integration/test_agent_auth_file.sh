#!/usr/bin/env bash
# test_agent_auth_file -- a plaintext (archfarm_insecure) agent, which the
# coordinator never gives credentials, pushes to an htpasswd registry with
# its own --registry-auth-file.
#   1. the agent refuses to start when the file is missing (exit 2, names
#      registry_auth_file);
#   2. with the file, a build through the plaintext agent publishes (the
#      coordinator's own config.json serves its push check and the index);
#      skopeo reads the index back with the credentials;
#   3. the agent's password is in none of its logs (debug logging on).
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"
source "$AF_SOURCE_DIR/tests/lib/registry.sh"

af_farm_init
export ARCHFARM_LOG=debug
PASS="agent-pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
AF_REGISTRY_STARTED=1
af_registry_start_htpasswd "$AF_TMP/registry" builder "$PASS" || af_fail "cannot start the registry"
s_auth() { # FILE
    jq -n --arg r "$AF_REGISTRY" --arg a "$(printf 'builder:%s' "$PASS" | base64 -w0)" \
        '{auths: {($r): {auth: $a}}}' >"$1"
    chmod 600 "$1"
}
mkdir -p "$AF_TMP/docker" "$AF_TMP/agentauth"
s_auth "$AF_TMP/docker/config.json"
s_auth "$AF_TMP/agentauth/auth.json"
export DOCKER_CONFIG=$AF_TMP/docker

# --- 1. a missing file is a start-up error ---------------------------------------
rc=0
timeout -k 5 20 "$AF_BIN/archfarm-agent" --insecure --listen "tcp://127.0.0.1:*" \
    --workdir "$AF_TMP/w0" --registry-auth-file "$AF_TMP/nope.json" >"$AF_TMP/a0.out" 2>&1 || rc=$?
af_assert_eq 2 "$rc" "a missing --registry-auth-file: exit 2"
af_assert_contains "$(cat "$AF_TMP/a0.out")" "registry_auth_file: $AF_TMP/nope.json" \
    "the error names the setting and the file"

# --- 2. the plaintext agent pushes with its own file ------------------------------
af_agent_start amd64 linux/amd64 --registry-auth-file "$AF_TMP/agentauth/auth.json"
af_inventory_write "$AF_TMP/inv.yaml"
mkdir -p "$AF_TMP/ctx"
cat >"$AF_TMP/ctx/archfarm.yaml" <<'YAML'
build:
  run: mkdir -p out && echo hi > out/hello.txt
image:
  from: scratch
  copy:
    - {src: out/hello.txt, dest: /hello.txt}
YAML
rc=0
af_build "$AF_TMP/b.out" --platform linux/amd64 -t "$AF_REGISTRY/own/app:1" --push "$AF_TMP/ctx" || rc=$?
af_assert_eq 0 "$rc" "the build through the plaintext agent publishes ($(tail -n 5 "$AF_TMP/b.out"))"
skopeo inspect --raw --tls-verify=false --creds "builder:$PASS" "docker://$AF_REGISTRY/own/app:1" \
    >"$AF_TMP/index.json" || af_fail "skopeo cannot read the index"
af_assert_eq "amd64" "$(jq -r '.manifests[0].platform.architecture' "$AF_TMP/index.json")" \
    "the index lists the agent's slice"
af_assert_contains "$(cat "${AF_AGENT_DIR[amd64]}/stderr.log")" "credentials from $AF_TMP/agentauth/auth.json" \
    "the agent used its own file"

# --- 3. no secret in the agent's logs -------------------------------------------------
b64=$(printf 'builder:%s' "$PASS" | base64 -w0)
if grep -rqF -e "$PASS" -e "$b64" "${AF_AGENT_DIR[amd64]}"/*.log "$AF_TMP/b.out"; then
    af_fail "the registry password reached a log"
fi
af_log "PASS"
