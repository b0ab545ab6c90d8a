#!/usr/bin/env bash
# test_registry_preflight -- a build that cannot be published fails before
# anything is built, with exit 3, and so does one whose agent is refused.
#
# A TLS + htpasswd docker-registry, one plaintext agent (which the
# coordinator never gives credentials), and a recipe whose build step
# writes a marker file to a path this test owns:
#   1. wrong credentials in $DOCKER_CONFIG/config.json: exit 3 within the
#      bound, the message names the registry, the repository and the 401,
#      no marker (no step ran) and no job dir on the agent;
#   2. right credentials: the push check passes, the step runs (marker),
#      the credential-less agent's push gets 401: exit 3 (was 1), slice
#      failure "registry";
#   3. a registry that is not listening: exit 3 within the bound, naming it.
# The bound: the push check makes a handful of loopback requests; 2 s
# (the acceptance figure) times AF_TEST_TIME_SCALE (default 1) for loaded
# machines, measured on the monotonic clock.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"
# shellcheck source=tests/lib/registry.sh
source "$AF_SOURCE_DIR/tests/lib/registry.sh"

af_farm_init
AF_REGISTRY_STARTED=1
af_registry_start_tls_htpasswd "$AF_TMP/registry" alice 'right pw' ||
    af_fail "cannot start the TLS htpasswd registry"
af_log "registry (TLS + htpasswd) at $AF_REGISTRY"
export DOCKER_CONFIG=$AF_TMP/docker
mkdir -p "$DOCKER_CONFIG"
s_creds() { # PASSWORD
    jq -n --arg r "$AF_REGISTRY" --arg a "$(printf 'alice:%s' "$1" | base64 -w0)" \
        '{auths: {($r): {auth: $a}}}' >"$DOCKER_CONFIG/config.json"
    chmod 600 "$DOCKER_CONFIG/config.json"
}

# --confine off: the marker lives outside the job dir, where Landlock
# (rightly) keeps a confined step from writing; confined, the "no marker"
# checks would pass even if a step had run
af_agent_start amd64 linux/amd64 --confine off
af_inventory_write "$AF_TMP/inv.yaml"
mkdir -p "$AF_TMP/ctx"
cat >"$AF_TMP/ctx/archfarm.yaml" <<'YAML'
build:
  run: |
    echo ran > "$MARKER"
    mkdir -p out && echo hi > out/hello.txt
image:
  from: scratch
  copy:
    - {src: out/hello.txt, dest: /hello.txt}
YAML

BOUND_MS=$(awk -v s="${AF_TEST_TIME_SCALE:-1}" 'BEGIN { printf "%d", 2000 * s }')
s_now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; } # monotonic (boot time)
s_build() { # REGISTRY MARKER OUT: sets RC and MS
    local t0
    t0=$(s_now_ms)
    RC=0
    af_archfarm build --progress plain --platform linux/amd64 --build-arg "MARKER=$2" \
        -t "$1/pre/app:1" --push "$AF_TMP/ctx" >"$3" 2>&1 || RC=$?
    MS=$(($(s_now_ms) - t0))
}

# --- 1. wrong credentials ----------------------------------------------------
s_creds 'wrong pw'
s_build "$AF_REGISTRY" "$AF_TMP/marker1" "$AF_TMP/b1.out"
out=$(cat "$AF_TMP/b1.out")
af_assert_eq 3 "$RC" "wrong credentials: exit 3 ($out)"
((MS <= BOUND_MS)) || af_fail "wrong credentials took ${MS} ms (bound ${BOUND_MS} ms)"
af_assert_contains "$out" "cannot push to repository pre/app on registry $AF_REGISTRY" \
    "the error names the registry and the repository"
af_assert_contains "$out" "HTTP 401" "the error names the status"
af_assert_contains "$out" "nothing was built" "the error says nothing was built"
[[ ! -e $AF_TMP/marker1 ]] || af_fail "the build step ran although the push check failed"
af_agent_no_job_dirs amd64 || af_fail "the agent got a job"
if grep -q 'wrong pw' "$AF_TMP/b1.out"; then af_fail "the password reached the output"; fi
af_log "wrong credentials: exit 3 in ${MS} ms"

# --- 2. the check passes, the agent (no credentials: plaintext) is refused ----
s_creds 'right pw'
s_build "$AF_REGISTRY" "$AF_TMP/marker2" "$AF_TMP/b2.out"
out=$(cat "$AF_TMP/b2.out")
[[ -e $AF_TMP/marker2 ]] || af_fail "the build step did not run after a passing push check: $out"
af_assert_eq 3 "$RC" "an agent refused by the registry: exit 3 ($out)"
af_assert_contains "$out" "(registry)" "the slice failed with failure registry"
af_assert_contains "$out" "401" "the slice's message names the 401"

# --- 3. nothing listening -------------------------------------------------------
dead=127.0.0.1:$(af_free_port)
s_build "$dead" "$AF_TMP/marker3" "$AF_TMP/b3.out"
out=$(cat "$AF_TMP/b3.out")
af_assert_eq 3 "$RC" "unreachable registry: exit 3 ($out)"
((MS <= BOUND_MS)) || af_fail "unreachable registry took ${MS} ms (bound ${BOUND_MS} ms)"
af_assert_contains "$out" "cannot push to repository pre/app on registry $dead" "the error names the dead registry"
[[ ! -e $AF_TMP/marker3 ]] || af_fail "the build step ran for an unreachable registry"
af_log "unreachable registry: exit 3 in ${MS} ms"
af_log "PASS"
