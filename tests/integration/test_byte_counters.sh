#!/usr/bin/env bash
# test_byte_counters -- --metadata-file says how many bytes a build moved.
#
# A real docker-registry and two agents build a two-platform native image
# (a 2 MiB incompressible asset plus a per-platform file) twice:
#   1. first build: each slice's context_bytes_sent is the size of the
#      context the agent stored (its contexts/<digest>.tar, i.e. what it
#      received), and pushed_bytes is exactly the config plus the layers of
#      the slice's manifest as the registry serves them (all new);
#      archfarm.totals adds them up; the summary table has SENT and PUSHED;
#   2. the same build again with --no-cache (the slice cache would not even
#      ask the nodes: test_slice_cache), nothing changed: the agents hold the context
#      (0 bytes sent) and the registry holds every blob (0 bytes pushed),
#      and the index digest is the same.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start
af_agent_start node-amd64 linux/amd64
af_agent_start node-arm64 linux/arm64
af_inventory_write "$AF_TMP/inventory.yaml"

ctx="$AF_TMP/ctx"
mkdir -p "$ctx"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$ctx/asset.bin"
cat >"$ctx/archfarm.yaml" <<'EOF'
build:
  run: |
    set -eu
    mkdir -p out
    printf 'built for %s\n' "$TARGETPLATFORM" >out/platform.txt
image:
  from: scratch
  copy:
    - {src: asset.bin, dest: /asset.bin}
    - {src: out/platform.txt, dest: /platform.txt}
EOF
REF="$AF_REGISTRY/bytes:1"
PLATFORMS=(linux/amd64 linux/arm64)
declare -A NODE=([linux/amd64]=node-amd64 [linux/arm64]=node-arm64)

build() { # build N [ARGS]: archfarm build into build-N.out and m-N.json
    local rc=0 n=$1
    shift
    af_build "$AF_TMP/build-$n.out" --platform linux/amd64,linux/arm64 -t "$REF" --push \
        --metadata-file "$AF_TMP/m-$n.json" "$@" "$ctx" || rc=$?
    set -- "$n"
    cat "$AF_TMP/build-$1.out" >&2
    af_assert_eq 0 "$rc" "archfarm build #$1 exit status"
    jq -e . "$AF_TMP/m-$1.json" >/dev/null || af_fail "metadata file #$1 is not JSON"
}

slice() { af_slice "$@"; } # slice N PLATFORM FIELD

# --- first build: everything is new --------------------------------------------
af_log "first build"
build 1
m1="$AF_TMP/m-1.json"
index=$(jq -r '."containerimage.digest"' "$m1")
total_sent=0 total_pushed=0
for plat in "${PLATFORMS[@]}"; do
    node=${NODE[$plat]}
    # what the agent received: its context store holds exactly one tar
    mapfile -t tars < <(find "$AF_TMP/agents/$node/work/contexts" -maxdepth 1 -name '*.tar')
    af_assert_eq 1 "${#tars[@]}" "$node holds one stored context"
    stored=$(stat -c %s "${tars[0]}")
    ((stored > 2 * 1024 * 1024)) || af_fail "$node stored context is only $stored bytes"
    sent=$(slice 1 "$plat" context_bytes_sent)
    af_assert_eq "$stored" "$sent" "$plat context_bytes_sent is the size of the context $node received"

    # what the registry holds for the slice: config + layers, all uploaded now
    digest=$(slice 1 "$plat" digest)
    af_manifest_raw "bytes@$digest" >"$AF_TMP/manifest.json" || af_fail "manifest $digest missing"
    blobs=$(jq '.config.size + ([.layers[].size] | add)' "$AF_TMP/manifest.json")
    pushed=$(slice 1 "$plat" pushed_bytes)
    af_assert_eq "$blobs" "$pushed" "$plat pushed_bytes is its config plus layers (all new)"
    ((pushed > 2 * 1024 * 1024)) || af_fail "$plat pushed only $pushed bytes (the asset is 2 MiB)"
    total_sent=$((total_sent + sent))
    total_pushed=$((total_pushed + pushed))
done
af_assert_eq 2 "$(jq '."archfarm.totals".slices' "$m1")" "totals count the slices"
af_assert_eq "$total_sent" "$(jq '."archfarm.totals".context_bytes_sent' "$m1")" \
    "totals context_bytes_sent is the sum of the slices"
af_assert_eq "$total_pushed" "$(jq '."archfarm.totals".pushed_bytes' "$m1")" \
    "totals pushed_bytes is the sum of the slices"

out=$(cat "$AF_TMP/build-1.out")
af_assert_match "$out" '^PLATFORM +NODE +RESULT +SECONDS +SENT +PUSHED ' "summary table has SENT and PUSHED"
af_assert_match "$out" '^linux/amd64 +node-amd64 +ok +[0-9.]+ +[0-9.]+ MiB +[0-9.]+ MiB ' \
    "summary row shows the bytes sent and pushed"

# --- second build, nothing changed: nothing moves ------------------------------
af_log "second build, unchanged"
build 2 --no-cache # built again on the nodes: the slice cache would skip them (test_slice_cache)
m2="$AF_TMP/m-2.json"
af_assert_eq "$index" "$(jq -r '."containerimage.digest"' "$m2")" "same inputs, same index digest"
for plat in "${PLATFORMS[@]}"; do
    af_assert_eq 0 "$(slice 2 "$plat" context_bytes_sent)" "$plat: no context bytes sent again"
    af_assert_eq 0 "$(slice 2 "$plat" pushed_bytes)" "$plat: no blob bytes pushed again"
done
af_assert_eq 0 "$(jq '."archfarm.totals".context_bytes_sent' "$m2")" "totals: 0 bytes sent"
af_assert_eq 0 "$(jq '."archfarm.totals".pushed_bytes' "$m2")" "totals: 0 bytes pushed"
af_assert_match "$(cat "$AF_TMP/build-2.out")" '^linux/arm64 +node-arm64 +ok +[0-9.]+ +0 B +0 B ' \
    "summary row shows 0 B sent and pushed"

echo "PASS: test_byte_counters"
