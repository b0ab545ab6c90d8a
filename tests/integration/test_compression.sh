#!/usr/bin/env bash
# test_compression -- `archfarm build --compression zstd[:LEVEL]`.
#
# A real docker-registry and two agents build a native image with zstd
# layers and publish it. Clients we did not write check it:
#   - skopeo inspect --raw: each slice's manifest lists its layer as
#     application/vnd.oci.image.layer.v1.tar+zstd;
#   - the layer blob, fetched from the registry, decompresses with
#     `zstd -d`, is a tar holding the file, and its sha256 is the config's
#     diff_id; the config and manifest validate against the OCI schemas;
#   - skopeo copy --all into an OCI layout accepts the image.
# Then: the default is still tar+gzip (gzip -d reads it); --compression
# zstd with --manifest-format docker, an unknown algorithm or a level out
# of range is a usage error (exit 2) before any work.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

command -v zstd >/dev/null || af_fail "zstd is not installed (tests/lib/deps.sh installs it)"
af_farm_init
af_farm_registry_start
af_agent_start node-amd64 linux/amd64
af_agent_start node-arm64 linux/arm64
af_inventory_write "$AF_TMP/inventory.yaml"

ctx="$AF_TMP/ctx"
mkdir -p "$ctx"
# compressible text plus 1 MiB of noise: more than one gzip piece
{ for i in $(seq 1 40000); do echo "line $i of a file archfarm packs into a layer"; done; } >"$ctx/data.txt"
head -c $((1024 * 1024)) /dev/urandom >"$ctx/noise.bin"
cat >"$ctx/archfarm.yaml" <<'EOF'
build:
  run: printf '%s\n' "$TARGETPLATFORM" >platform.txt
image:
  from: scratch
  copy:
    - {src: data.txt, dest: /data.txt}
    - {src: noise.bin, dest: /noise.bin}
    - {src: platform.txt, dest: /platform.txt}
EOF

# --- a zstd build, published --------------------------------------------------
REF="$AF_REGISTRY/zst:1"
rc=0
af_build "$AF_TMP/zstd.out" --platform linux/amd64,linux/arm64 -t "$REF" --push \
    --compression zstd:19 "$ctx" || rc=$?
cat "$AF_TMP/zstd.out" >&2
af_assert_eq 0 "$rc" "archfarm build --compression zstd:19 exit status"
af_assert_match "$(cat "$AF_TMP/zstd.out")" 'packing layer \(3 copy entries, zstd, [0-9]+ threads\)' \
    "the agent says it packs zstd"

af_skopeo inspect --raw --tls-verify=false "docker://$REF" >"$AF_TMP/index.json" ||
    af_fail "skopeo inspect --raw docker://$REF failed"
af_assert_eq 2 "$(jq '.manifests | length' "$AF_TMP/index.json")" "index has 2 manifests"
n=0
while IFS=$'\t' read -r digest plat; do
    n=$((n + 1))
    af_skopeo inspect --raw --tls-verify=false "docker://$AF_REGISTRY/zst@$digest" >"$AF_TMP/m$n.json" ||
        af_fail "skopeo inspect --raw of $plat ($digest) failed"
    af_oci_validate manifest "$AF_TMP/m$n.json"
    af_assert_eq application/vnd.oci.image.layer.v1.tar+zstd \
        "$(jq -r '.layers[].mediaType' "$AF_TMP/m$n.json" | sort -u)" "$plat layer media type (skopeo)"
    layer=$(jq -r '.layers[0].digest' "$AF_TMP/m$n.json")
    af_blob zst "$layer" >"$AF_TMP/layer$n.zst" || af_fail "layer $layer of $plat missing"
    af_assert_eq "$layer" "sha256:$(sha256sum <"$AF_TMP/layer$n.zst" | cut -d' ' -f1)" "$plat layer bytes match their digest"
    zstd -q -d -c "$AF_TMP/layer$n.zst" >"$AF_TMP/layer$n.tar" || af_fail "zstd -d could not read the $plat layer"
    af_assert_eq "$(printf '%s\n' data.txt noise.bin platform.txt)" \
        "$(tar -tf "$AF_TMP/layer$n.tar" | sort)" "$plat layer tar lists the copied files"
    tar -xOf "$AF_TMP/layer$n.tar" noise.bin | cmp -s - "$ctx/noise.bin" ||
        af_fail "$plat layer's noise.bin differs from the context's"
    af_assert_eq "$plat" "$(tar -xOf "$AF_TMP/layer$n.tar" platform.txt)" "$plat layer holds its own build output"
    cfg=$(jq -r '.config.digest' "$AF_TMP/m$n.json")
    af_blob zst "$cfg" >"$AF_TMP/c$n.json" || af_fail "config of $plat missing"
    af_oci_validate config "$AF_TMP/c$n.json"
    af_assert_eq "sha256:$(sha256sum <"$AF_TMP/layer$n.tar" | cut -d' ' -f1)" \
        "$(jq -r '.rootfs.diff_ids[0]' "$AF_TMP/c$n.json")" "$plat diff_id is the sha256 of the decompressed layer"
done < <(jq -r '.manifests[] | [.digest, (.platform.os + "/" + .platform.architecture)] | @tsv' \
    "$AF_TMP/index.json")
af_assert_eq 2 "$n" "manifests checked"

af_skopeo copy --all --src-tls-verify=false "docker://$REF" "oci:$AF_TMP/layout:1" >"$AF_TMP/copy.log" 2>&1 ||
    af_fail "skopeo copy --all of the zstd image failed: $(cat "$AF_TMP/copy.log")"

# --- the default is still gzip ------------------------------------------------
rc=0
af_build "$AF_TMP/gzip.out" --platform linux/amd64 -t "$AF_REGISTRY/gz:1" --push "$ctx" || rc=$?
af_assert_eq 0 "$rc" "default build exit status"
d=$(af_skopeo inspect --raw --tls-verify=false "docker://$AF_REGISTRY/gz:1" | jq -r '.manifests[0].digest')
af_skopeo inspect --raw --tls-verify=false "docker://$AF_REGISTRY/gz@$d" >"$AF_TMP/gz.json"
af_assert_eq application/vnd.oci.image.layer.v1.tar+gzip "$(jq -r '.layers[0].mediaType' "$AF_TMP/gz.json")" \
    "default layer media type"
af_blob gz "$(jq -r '.layers[0].digest' "$AF_TMP/gz.json")" | gzip -dc | tar -t >/dev/null ||
    af_fail "gzip -d could not read the default layer"

# --- usage errors, before any work ---------------------------------------------
for bad in "--compression zstd --manifest-format docker" "--compression xz" "--compression gzip:10" \
    "--compression zstd:0" "--compression zstd:23"; do
    rc=0
    # shellcheck disable=SC2086
    af_build "$AF_TMP/bad.out" --platform linux/amd64 -t "$AF_REGISTRY/bad:1" $bad "$ctx" || rc=$?
    af_assert_eq 2 "$rc" "archfarm build $bad exit status"
    af_assert_match "$(cat "$AF_TMP/bad.out")" '--compression' "the error for '$bad' names --compression"
done
af_assert_match "$(cat "$AF_TMP/bad.out")" '1\.\.22' "the level error gives the range"
curl -fsS "http://$AF_REGISTRY/v2/bad/tags/list" >/dev/null 2>&1 && af_fail "a refused build reached the registry"

echo "PASS: test_compression"
