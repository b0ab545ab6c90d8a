#!/usr/bin/env bash
# test_failing_slice -- one failed slice fails the build and moves no tag.
#
# The `failing` fixture's build step exits 3 on linux/arm64 only. First
# :stable is published from the two platforms that do build; then a
# three-platform build to -t app:stable -t app:new must exit 1, name the
# platform, the node and the step status, leave app:new nonexistent and
# leave app:stable pointing at exactly what it pointed at before.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start
af_agent_start node-amd64 linux/amd64
af_agent_start node-arm64 linux/arm64
af_agent_start node-armv7 linux/arm/v7
af_inventory_write "$AF_TMP/inventory.yaml"
cp -r "$AF_SOURCE_DIR/tests/integration/fixtures/failing" "$AF_TMP/ctx"

# --- a good :stable first ----------------------------------------------------
rc=0
af_build "$AF_TMP/stable.out" --platform linux/amd64,linux/arm/v7 \
    -t "$AF_REGISTRY/app:stable" --push "$AF_TMP/ctx" || rc=$?
af_assert_eq 0 "$rc" "publishing app:stable (amd64 + arm/v7) succeeds"
stable=$(af_tag_digest app:stable) || af_fail "app:stable missing after a successful build"
af_log "app:stable is $stable"

# --- a build whose arm64 slice fails ------------------------------------------
rc=0
af_archfarm build --progress plain --insecure-registry "$AF_REGISTRY" \
    --platform linux/amd64,linux/arm64,linux/arm/v7 \
    -t "$AF_REGISTRY/app:stable" -t "$AF_REGISTRY/app:new" --push \
    --metadata-file "$AF_TMP/m.json" "$AF_TMP/ctx" \
    >"$AF_TMP/fail.stdout" 2>"$AF_TMP/fail.stderr" || rc=$?
cat "$AF_TMP/fail.stdout" "$AF_TMP/fail.stderr" >&2
af_assert_eq 1 "$rc" "a failed slice makes archfarm build exit 1"

err=$(cat "$AF_TMP/fail.stderr")
# The error itself (not only the streamed "[linux/...]" log lines) must say it all.
summary=$(grep -v '^\[linux/' <<<"$err" || true)
af_assert_contains "$summary" "linux/arm64" "error names the failed platform"
af_assert_contains "$summary" "node-arm64" "error names the failed node"
af_assert_match "$summary" '(status|code|exit)[^0-9]{0,12}3([^0-9]|$)' "error gives the step status 3"
af_assert_contains "$(cat "$AF_TMP/fail.stdout" "$AF_TMP/fail.stderr")" \
    "refusing to build for linux/arm64" "the failing step's own stderr is shown"

# --- no tag moved --------------------------------------------------------------
if af_skopeo inspect --raw --tls-verify=false "docker://$AF_REGISTRY/app:new" >"$AF_TMP/new.json" 2>&1; then
    af_fail "app:new exists after a failed build: $(cat "$AF_TMP/new.json")"
fi
printf 'ok: skopeo inspect of app:new fails (%s)\n' "$(tail -n 1 "$AF_TMP/new.json")" >&2
code=$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    "http://$AF_REGISTRY/v2/app/manifests/new")
af_assert_eq 404 "$code" "registry answers 404 for app:new"
af_assert_eq "$stable" "$(af_tag_digest app:stable)" "app:stable digest unchanged"
af_assert_eq 2 "$(af_manifest_raw app:stable | jq '.manifests | length')" "app:stable still has its 2 platforms"

# every build process is gone and no job dir stays on any agent
# (cancelled slices may still be tearing down when the coordinator exits)
for name in node-amd64 node-arm64 node-armv7; do
    af_wait_until 20 "agent $name to remove its job dirs" af_agent_no_job_dirs "$name"
    printf 'ok: agent %s removed its job dirs\n' "$name" >&2
done
af_wait_until 20 "build processes of the failed build to end" af_no_build_processes
printf 'ok: no build process left\n' >&2

echo "PASS: test_failing_slice"
