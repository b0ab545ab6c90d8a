#!/usr/bin/env bash
# test_manifest_format_docker -- `build --manifest-format docker` publishes
# a Docker manifest list v2 whose children are Docker v2 manifests (config
# and layers with Docker media types), and skopeo pulls each platform.
# Two native agents (amd64, arm64: the recipe's step is shell only, so no
# emulation is needed), a plain registry. An engine-only request is
# refused by name (not tested here: no engine on the test agents).
# Also `--annotation` (OCI): index: lands on the index, manifest: and
# unprefixed on every manifest; with --manifest-format docker it is a
# usage error.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
command -v skopeo >/dev/null || af_fail "skopeo is not installed"
af_farm_registry_start
af_agent_start amd64 linux/amd64
af_agent_start arm64 linux/arm64
af_inventory_write "$AF_TMP/inv.yaml"
mkdir -p "$AF_TMP/ctx"
cat >"$AF_TMP/ctx/archfarm.yaml" <<'YAML'
build:
  run: mkdir -p out && echo "built for $TARGETPLATFORM" > out/hello.txt
image:
  from: scratch
  copy:
    - {src: out/hello.txt, dest: /hello.txt}
YAML
rc=0
af_build "$AF_TMP/b.out" --manifest-format docker --platform linux/amd64,linux/arm64 \
    -t "$AF_REGISTRY/dk/app:1" --push "$AF_TMP/ctx" || rc=$?
af_assert_eq 0 "$rc" "build --manifest-format docker ($(tail -n 5 "$AF_TMP/b.out"))"
REF=$AF_REGISTRY/dk/app:1
raw=$(skopeo inspect --raw --tls-verify=false "docker://$REF")
af_assert_eq "application/vnd.docker.distribution.manifest.list.v2+json" "$(jq -r .mediaType <<<"$raw")" \
    "the tag holds a Docker manifest list"
af_assert_eq "linux/amd64 linux/arm64" \
    "$(jq -r '[.manifests[] | .platform.os + "/" + .platform.architecture] | sort | join(" ")' <<<"$raw")" \
    "it lists both platforms"
for d in $(jq -r '.manifests[].digest' <<<"$raw"); do
    child=$(skopeo inspect --raw --tls-verify=false "docker://$AF_REGISTRY/dk/app@$d")
    af_assert_eq "application/vnd.docker.distribution.manifest.v2+json" "$(jq -r .mediaType <<<"$child")" \
        "child $d is a Docker v2 manifest"
    af_assert_eq "application/vnd.docker.container.image.v1+json" "$(jq -r .config.mediaType <<<"$child")" \
        "child $d has a Docker config"
    af_assert_eq "application/vnd.docker.image.rootfs.diff.tar.gzip" \
        "$(jq -r '[.layers[].mediaType] | unique | join(",")' <<<"$child")" "child $d has Docker layers"
done
for arch in amd64 arm64; do
    skopeo copy --src-tls-verify=false --override-arch "$arch" "docker://$REF" \
        "dir:$AF_TMP/pull-$arch" >"$AF_TMP/pull.log" 2>&1 ||
        af_fail "skopeo cannot pull $arch: $(cat "$AF_TMP/pull.log")"
    printf 'ok: skopeo pulls linux/%s\n' "$arch" >&2
done
rc=0
af_build "$AF_TMP/b2.out" --manifest-format v1 --platform linux/amd64 -t "$REF" "$AF_TMP/ctx" || rc=$?
af_assert_eq 2 "$rc" "an unknown --manifest-format is a usage error"

# --- --annotation ------------------------------------------------------------------
REF2=$AF_REGISTRY/dk/annotated:1
rc=0
af_build "$AF_TMP/b3.out" --platform linux/amd64,linux/arm64 --annotation index:org.example.team=infra \
    --annotation manifest:org.example.role=web --annotation org.opencontainers.image.title=hello \
    -t "$REF2" --push "$AF_TMP/ctx" || rc=$?
af_assert_eq 0 "$rc" "build with --annotation ($(tail -n 3 "$AF_TMP/b3.out"))"
raw=$(skopeo inspect --raw --tls-verify=false "docker://$REF2")
af_assert_eq "infra" "$(jq -r '.annotations["org.example.team"]' <<<"$raw")" "index: lands on the index"
af_assert_eq "null" "$(jq -r '.annotations["org.example.role"]' <<<"$raw")" "manifest: is not on the index"
for d in $(jq -r '.manifests[].digest' <<<"$raw"); do
    child=$(skopeo inspect --raw --tls-verify=false "docker://$AF_REGISTRY/dk/annotated@$d")
    af_assert_eq "web hello" "$(jq -r '.annotations["org.example.role"] + " " + .annotations["org.opencontainers.image.title"]' <<<"$child")" \
        "manifest: and unprefixed annotations are on manifest $d"
done
rc=0
af_build "$AF_TMP/b4.out" --manifest-format docker --annotation a=b --platform linux/amd64 -t "$REF2" "$AF_TMP/ctx" || rc=$?
af_assert_eq 2 "$rc" "--annotation with --manifest-format docker is a usage error"
rc=0
af_build "$AF_TMP/b5.out" --annotation manifest-descriptor:a=b --platform linux/amd64 -t "$REF2" "$AF_TMP/ctx" || rc=$?
af_assert_eq 2 "$rc" "an unsupported annotation target is a usage error"
af_log "PASS"
