#!/usr/bin/env bash
# test_build_three_platforms -- the core of issue 2, end to end.
#
# A real docker-registry and three agents, each serving one platform
# (linux/amd64, linux/arm64, linux/arm/v7), build the cross-c fixture with one
# `archfarm build --push`. Clients we did not write check the result:
#   - skopeo inspect --raw: an OCI index with exactly those three platforms;
#   - every child manifest and config validates against the OCI schemas and
#     its config's os/architecture/variant match its index entry;
#   - skopeo copy --all into an OCI layout succeeds;
#   - each platform pulled with skopeo --override-arch/--override-variant
#     runs (natively or under qemu-user) and reports x86_64/aarch64/armv7l;
#   - --metadata-file names the index digest and the node of each slice;
#   - plain progress lines are prefixed "[PLATFORM NODE]".
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start
af_agent_start node-amd64 linux/amd64
af_agent_start node-arm64 linux/arm64
af_agent_start node-armv7 linux/arm/v7
af_inventory_write "$AF_TMP/inventory.yaml"

cp -r "$AF_SOURCE_DIR/tests/integration/fixtures/cross-c" "$AF_TMP/ctx"
REF="$AF_REGISTRY/app:1.0"
PLATFORMS=(linux/amd64 linux/arm64 linux/arm/v7)

af_log "archfarm build --platform linux/amd64,linux/arm64,linux/arm/v7 -t $REF --push"
rc=0
af_build "$AF_TMP/build.out" --platform linux/amd64,linux/arm64,linux/arm/v7 \
    -t "$REF" --push --metadata-file "$AF_TMP/m.json" "$AF_TMP/ctx" || rc=$?
cat "$AF_TMP/build.out" >&2
af_assert_eq 0 "$rc" "archfarm build exit status"

# --- progress ---------------------------------------------------------------
out=$(cat "$AF_TMP/build.out")
af_assert_match "$out" '^\[linux/arm64 node-arm64\] ' "progress lines prefixed [linux/arm64 node-arm64]"
af_assert_match "$out" '^\[linux/amd64 node-amd64\] ' "progress lines prefixed [linux/amd64 node-amd64]"
af_assert_match "$out" '^\[linux/arm/v7 node-armv7\] ' "progress lines prefixed [linux/arm/v7 node-armv7]"
af_assert_match "$out" '^\[linux/arm64 node-arm64\] .*aarch64-linux-gnu-gcc' \
    "the build step's own output streams back (arm64 compiler line)"

# --- the index, as skopeo sees it ----------------------------------------------
af_skopeo inspect --raw --tls-verify=false "docker://$REF" >"$AF_TMP/index.json" ||
    af_fail "skopeo inspect --raw docker://$REF failed"
af_assert_eq application/vnd.oci.image.index.v1+json \
    "$(jq -r '.mediaType' "$AF_TMP/index.json")" "index mediaType"
af_assert_eq 2 "$(jq -r '.schemaVersion' "$AF_TMP/index.json")" "index schemaVersion"
af_assert_eq 3 "$(jq '.manifests | length' "$AF_TMP/index.json")" "index has exactly 3 manifests"
got=$(jq -r '.manifests[].platform | [.os, .architecture, .variant // empty] | join("/")' \
    "$AF_TMP/index.json" | sort | paste -sd, -)
af_assert_eq "linux/amd64,linux/arm/v7,linux/arm64" "$got" "index platforms"
af_oci_validate index "$AF_TMP/index.json"

af_manifest_raw app:1.0 >"$AF_TMP/index.raw" || af_fail "tag app:1.0 not in the registry"
index_digest="sha256:$(sha256sum <"$AF_TMP/index.raw" | cut -d' ' -f1)"
cmp -s "$AF_TMP/index.raw" "$AF_TMP/index.json" || af_log "note: skopeo --raw output differs from the served bytes"
skopeo_digest=$(af_skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REF" 2>/dev/null || true)
af_log "index digest $index_digest (skopeo: ${skopeo_digest:-n/a})"

# --- every child: schema-valid manifest and config, platform matches --------
n=0
while IFS=$'\t' read -r digest mt plat; do
    n=$((n + 1))
    af_assert_eq application/vnd.oci.image.manifest.v1+json "$mt" "$plat entry mediaType"
    af_manifest_raw "app@$digest" >"$AF_TMP/manifest-$n.json" || af_fail "child $digest of $plat missing"
    af_assert_eq "$digest" "sha256:$(sha256sum <"$AF_TMP/manifest-$n.json" | cut -d' ' -f1)" \
        "$plat manifest bytes match their digest"
    af_oci_validate manifest "$AF_TMP/manifest-$n.json"
    cfg=$(jq -r '.config.digest' "$AF_TMP/manifest-$n.json")
    af_blob app "$cfg" >"$AF_TMP/config-$n.json" || af_fail "config $cfg of $plat missing"
    af_oci_validate config "$AF_TMP/config-$n.json"
    cplat=$(jq -r '[.os, .architecture, .variant // empty] | join("/")' "$AF_TMP/config-$n.json")
    af_assert_eq "$plat" "$cplat" "$plat config os/architecture/variant"
    af_assert_eq '["/hello"]' "$(jq -c '.config.Entrypoint' "$AF_TMP/config-$n.json")" "$plat entrypoint"
done < <(jq -r '.manifests[] | [.digest, .mediaType,
        ([.platform.os, .platform.architecture, .platform.variant // empty] | join("/"))] | @tsv' \
    "$AF_TMP/index.json")
af_assert_eq 3 "$n" "children checked"

# --- skopeo copy --all into an OCI layout ----------------------------------------
af_skopeo copy --all --src-tls-verify=false "docker://$REF" "oci:$AF_TMP/layout:1.0" >"$AF_TMP/copy.log" 2>&1 ||
    af_fail "skopeo copy --all failed: $(cat "$AF_TMP/copy.log")"
[[ -f "$AF_TMP/layout/index.json" && -f "$AF_TMP/layout/oci-layout" ]] || af_fail "no OCI layout written"
af_assert_eq 1.0 "$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$AF_TMP/layout/index.json")" \
    "OCI layout holds tag 1.0"
af_assert_eq "$index_digest" "$(jq -r '.manifests[0].digest' "$AF_TMP/layout/index.json")" \
    "skopeo copy --all kept the index digest"

# --- run each platform's binary --------------------------------------------------
declare -A EXPECT=([linux/amd64]=x86_64 [linux/arm64]=aarch64 [linux/arm/v7]='armv7l|arm')
for plat in "${PLATFORMS[@]}"; do
    d="$AF_TMP/pull-${plat//\//-}"
    af_pull_rootfs "$REF" "$plat" "$d"
    [[ -x "$d/rootfs/hello" ]] || af_fail "$plat image has no executable /hello"
    q=$(af_qemu_for "$plat")
    said=$($q "$d/rootfs/hello") || af_fail "$plat /hello did not run (${q:-native})"
    af_log "$plat (${q:-native}): $said"
    af_assert_match "$said" "^hello from (${EXPECT[$plat]})\$" "$plat binary reports its architecture"
done

# --- metadata file ------------------------------------------------------------------
m="$AF_TMP/m.json"
[[ -s $m ]] || af_fail "--metadata-file $m not written"
jq -e . "$m" >/dev/null || af_fail "metadata file is not JSON: $(cat "$m")"
af_assert_eq "$index_digest" "$(jq -r '."containerimage.digest"' "$m")" "metadata containerimage.digest is the index digest"
af_assert_eq "$index_digest" "$(jq -r '."containerimage.descriptor".digest' "$m")" "metadata descriptor digest"
af_assert_eq application/vnd.oci.image.index.v1+json \
    "$(jq -r '."containerimage.descriptor".mediaType' "$m")" "metadata descriptor mediaType"
af_assert_eq "$(stat -c %s "$AF_TMP/index.raw")" "$(jq -r '."containerimage.descriptor".size' "$m")" \
    "metadata descriptor size"
af_assert_contains "$(jq -r '."image.name"' "$m")" "$REF" "metadata image.name"
af_assert_eq 3 "$(jq '.slices | length' "$m")" "metadata has 3 slices"
declare -A NODE=([linux/amd64]=node-amd64 [linux/arm64]=node-arm64 [linux/arm/v7]=node-armv7)
for plat in "${PLATFORMS[@]}"; do
    af_assert_eq "${NODE[$plat]}" "$(jq -r --arg p "$plat" '.slices[] | select(.platform == $p) | .node' "$m")" \
        "metadata slice $plat built on ${NODE[$plat]}"
    want=$(jq -r --arg p "$plat" '.manifests[] | select(([.platform.os, .platform.architecture,
        .platform.variant // empty] | join("/")) == $p) | .digest' "$AF_TMP/index.json")
    af_assert_eq "$want" "$(jq -r --arg p "$plat" '.slices[] | select(.platform == $p) | .digest' "$m")" \
        "metadata slice $plat digest is the index entry"
    jq -e --arg p "$plat" '.slices[] | select(.platform == $p) | .seconds | numbers' "$m" >/dev/null ||
        af_fail "metadata slice $plat has no numeric seconds"
done

# --- nothing left behind on the agents ----------------------------------------------
# RESULT is sent after the job dir is gone, so this holds right away.
for name in node-amd64 node-arm64 node-armv7; do
    af_agent_no_job_dirs "$name" || af_fail "agent $name still holds a job dir after RESULT"
    printf 'ok: agent %s removed its job dirs\n' "$name" >&2
done
af_no_build_processes || af_fail "a build process outlived its RESULT"

echo "PASS: test_build_three_platforms"
