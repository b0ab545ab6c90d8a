#!/usr/bin/env bash
# test_reproducible -- same inputs and SOURCE_DATE_EPOCH give the same digests.
#
# Two builds of the cross-c fixture with SOURCE_DATE_EPOCH=1700000000 to two
# tags must give one index digest (and the same three child digests); the
# second build (--no-cache: built again, not taken from the slice cache)
# reuses the context the agents already hold. A build with
# another SOURCE_DATE_EPOCH must give a different index digest (the epoch
# reaches the layer mtimes and the config's `created`).
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start
af_agent_start node-amd64 linux/amd64
af_agent_start node-arm64 linux/arm64
af_agent_start node-armv7 linux/arm/v7
af_inventory_write "$AF_TMP/inventory.yaml"
cp -r "$AF_SOURCE_DIR/tests/integration/fixtures/cross-c" "$AF_TMP/ctx"
P=linux/amd64,linux/arm64,linux/arm/v7

s_build() { # TAG EPOCH [ARGS...]
    local rc=0 tag=$1 epoch=$2
    shift 2
    SOURCE_DATE_EPOCH=$epoch af_build "$AF_TMP/$tag.out" --platform "$P" \
        -t "$AF_REGISTRY/repro:$tag" --push --metadata-file "$AF_TMP/$tag.json" "$@" "$AF_TMP/ctx" || rc=$?
    set -- "$tag" "$epoch"
    ((rc == 0)) || af_fail "build of repro:$1 (SOURCE_DATE_EPOCH=$2) exited $rc:
$(tail -n 30 "$AF_TMP/$1.out")"
}

s_build a 1700000000
s_build b 1700000000 --no-cache # really built again: the slice cache would reuse a's
af_assert_eq "false false false" "$(jq -r '[.slices[].cached] | join(" ")' "$AF_TMP/b.json")" \
    "build b was built, not taken from the slice cache"
s_build c 1700000001

da=$(af_tag_digest repro:a) || af_fail "repro:a missing"
db=$(af_tag_digest repro:b) || af_fail "repro:b missing"
dc=$(af_tag_digest repro:c) || af_fail "repro:c missing"
af_log "a=$da b=$db c=$dc"

af_assert_eq "$da" "$db" "same inputs and SOURCE_DATE_EPOCH give the same index digest"
af_assert_eq "$(af_manifest_raw repro:a | jq -c '[.manifests[].digest] | sort')" \
    "$(af_manifest_raw repro:b | jq -c '[.manifests[].digest] | sort')" "and the same child digests"
af_assert_eq "$da" "$(jq -r '."containerimage.digest"' "$AF_TMP/a.json")" "metadata digest of build a"
af_assert_ne "$da" "$dc" "another SOURCE_DATE_EPOCH gives another index digest"

# the epoch is what the config says it was created at
child=$(af_manifest_raw repro:a | jq -r '.manifests[0].digest')
cfg=$(af_manifest_raw "repro@$child" | jq -r '.config.digest')
created=$(af_blob repro "$cfg" | jq -r '.created')
af_assert_eq 1700000000 "$(date -u -d "$created" +%s 2>/dev/null || echo "unparseable: $created")" \
    "config created ($created) is SOURCE_DATE_EPOCH"

echo "PASS: test_reproducible"
