#!/usr/bin/env bash
# test_build_inputs -- build.inputs: each platform is sent only what its
# step reads (docs/recipe.md).
#
# A native recipe declares `inputs: ['bin/hello-${TARGETARCH}',
# 'assets/asset-${TARGETARCH}.bin', common]` in a context that also holds a
# 3 MiB docs/ tree nobody reads. With a real registry and three agents:
#   1. each agent receives a tar with the recipe, its own binary and asset
#      and common/, and nothing else (listed with tar -t), its
#      context_bytes_sent is that tar's size, and the build step saw exactly
#      those files (its listing is in the image, read back from the
#      registry);
#   2. nothing changed: every slice comes from the slice cache (0 bytes);
#   3. only the arm64 asset changed: amd64 and arm/v7 still come from the
#      slice cache (their contexts did not change), their files are not
#      even read (each context has its own stat walk), and only arm64 is
#      built again; a change in docs/, which no platform reads, rebuilds
#      and re-reads nothing;
#   4. a bad pattern is refused before anything is sent, naming the file,
#      line and column.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start
af_agent_start node-amd64 linux/amd64
af_agent_start node-arm64 linux/arm64
af_agent_start node-armv7 linux/arm/v7
af_inventory_write "$AF_TMP/inventory.yaml"

ctx=$AF_TMP/ctx
mkdir -p "$ctx/bin" "$ctx/assets" "$ctx/common" "$ctx/docs"
for a in amd64 arm64 arm; do
    echo "hello for $a" >"$ctx/bin/hello-$a"
    head -c $((1536 * 1024)) /dev/urandom >"$ctx/assets/asset-$a.bin"
done
echo shared >"$ctx/common/shared.txt"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$ctx/docs/manual.pdf"
cat >"$ctx/archfarm.yaml" <<'EOF'
build:
  inputs:
    - bin/hello-${TARGETARCH}
    - assets/asset-${TARGETARCH}.bin
    - common
  run: |
    set -eu
    mkdir -p out
    find . -path ./out -prune -o -type f -print | sort >out/seen.txt
    cp "bin/hello-$TARGETARCH" out/hello
image:
  from: scratch
  copy:
    - {src: out/hello, dest: /hello}
    - {src: out/seen.txt, dest: /seen.txt}
EOF
REF="$AF_REGISTRY/inputs:1"
PLATS=linux/amd64,linux/arm64,linux/arm/v7
declare -A NODE=([linux/amd64]=node-amd64 [linux/arm64]=node-arm64 [linux/arm/v7]=node-armv7)
declare -A ARCH=([linux/amd64]=amd64 [linux/arm64]=arm64 [linux/arm/v7]=arm)

build() { af_build_ok "$1" "$PLATS" "$REF" "$ctx"; }
slice() { af_slice "$@"; }

# --- 1. each platform gets its own part ---------------------------------------------
build 1
full=$(du -sb "$ctx" | cut -f1)
for plat in linux/amd64 linux/arm64 linux/arm/v7; do
    node=${NODE[$plat]} a=${ARCH[$plat]}
    mapfile -t tars < <(find "${AF_AGENT_DIR[$node]}/work/contexts" -maxdepth 1 -name '*.tar')
    af_assert_eq 1 "${#tars[@]}" "$node holds one context"
    got=$(tar -tf "${tars[0]}" | sort | paste -sd' ' -)
    af_assert_eq "archfarm.yaml assets/ assets/asset-$a.bin bin/ bin/hello-$a common/ common/shared.txt" \
        "$got" "$plat was sent its inputs and the recipe, nothing else"
    sent=$(slice 1 "$plat" context_bytes_sent)
    af_assert_eq "$(stat -c %s "${tars[0]}")" "$sent" "$plat context_bytes_sent is its tar"
    ((sent < full / 2)) || af_fail "$plat was sent $sent bytes of a $full-byte context"
    printf 'ok: %s was sent %d bytes (the whole context is %d)\n' "$plat" "$sent" "$full" >&2
    digest=$(slice 1 "$plat" digest)
    layer=$(af_manifest_raw "inputs@$digest" | jq -r '.layers[0].digest')
    seen=$(af_blob inputs "$layer" | tar -xzO seen.txt | paste -sd' ' -)
    af_assert_eq "./archfarm.yaml ./assets/asset-$a.bin ./bin/hello-$a ./common/shared.txt" "$seen" \
        "$plat: the build step saw its inputs only"
done
af_assert_contains "$(cat "$AF_TMP/build-1.out")" "context for linux/arm64:" \
    "progress names each platform's context"

# --- 2./3. caching follows each platform's inputs --------------------------------------
build 2
for plat in linux/amd64 linux/arm64 linux/arm/v7; do
    af_assert_eq true "$(slice 2 "$plat" cached)" "unchanged: $plat from the slice cache"
done
head -c $((1536 * 1024)) /dev/urandom >"$ctx/assets/asset-arm64.bin"
build 3
af_assert_eq true "$(slice 3 linux/amd64 cached)" "arm64 asset changed: amd64 still cached"
af_assert_eq true "$(slice 3 linux/arm/v7 cached)" "arm64 asset changed: arm/v7 still cached"
af_assert_eq false "$(slice 3 linux/arm64 cached)" "arm64 asset changed: arm64 built again"
# and the coordinator re-read only arm64's files: the others' stat walks
# (narrowed to their inputs) did not change
out3=$(cat "$AF_TMP/build-3.out")
af_assert_contains "$out3" "packing context $ctx for linux/arm64" "arm64's context was packed again"
for plat in linux/amd64 linux/arm/v7; do
    af_assert_match "$out3" "context for $plat: .*\(unchanged since it was packed\)" \
        "$plat's context digest came from the stat cache (its files were not read)"
    if grep -q "packing context $ctx for $plat " <<<"$out3"; then
        af_fail "$plat's context was packed again though none of its inputs changed"
    fi
done
echo "a new page" >>"$ctx/docs/manual.pdf"
build 4
for plat in linux/amd64 linux/arm64 linux/arm/v7; do
    af_assert_eq true "$(slice 4 "$plat" cached)" "docs changed (read by none): $plat cached"
done
# (arm64's own record may be missing: its asset was written within the stat
# cache's 50 ms "racily clean" window of build 3's walk, so build 3 did not
# record it; amd64's and arm/v7's were recorded by build 2)
for plat in linux/amd64 linux/arm/v7; do
    if grep -q "packing context $ctx for $plat " "$AF_TMP/build-4.out"; then
        af_fail "a change in docs/, which no platform reads, made the coordinator pack $plat's context"
    fi
done

# --- 4. a bad pattern: refused before anything is sent ---------------------------------
sed -i 's|    - common|    - common/${ARCH}|' "$ctx/archfarm.yaml"
rc=0
af_build "$AF_TMP/build-bad.out" --platform "$PLATS" -t "$REF" --push "$ctx" || rc=$?
af_assert_eq 2 "$rc" "a bad build.inputs pattern is a usage error"
af_assert_match "$(cat "$AF_TMP/build-bad.out")" 'archfarm.yaml:[0-9]+:[0-9]+: build.inputs: .*unknown variable \$\{ARCH\}' \
    "the error names the file, line, column and variable"

echo "PASS: test_build_inputs"
