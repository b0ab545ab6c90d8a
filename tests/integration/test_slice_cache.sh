#!/usr/bin/env bash
# test_slice_cache -- a build whose inputs did not change costs nothing
# (issue 15: the slice cache and the context stat cache).
#
# One native agent, a real registry, a context with a data file:
#   1. the first --push build builds the slice and records it: the
#      repository gets the tag archfarm-cache-<key>, naming the slice's
#      manifest; the metadata says cached false and bytes were sent.
#   2. the same build again, with the agent STOPPED: the context digest comes
#      from the stat cache (no file read), the slice from the slice cache;
#      it succeeds with no node at all, the metadata says cached true,
#      context_bytes_sent 0 and pushed_bytes 0, and the index is the same.
#   3. --no-cache (agent back): the slice is built again, same index.
#   4. `touch` of a file (same bytes): the stat cache misses and the context
#      is packed again, to the same digest, so the slice cache still hits.
#   5. one changed file: a new context digest, a new key: built and sent.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start

af_agent_start amd64 linux/amd64
af_inventory_write "$AF_TMP/inv.yaml"
mkdir -p "$AF_TMP/ctx"
head -c 300000 /dev/urandom >"$AF_TMP/ctx/data.bin"
cat >"$AF_TMP/ctx/archfarm.yaml" <<'YAML'
build:
  run: mkdir -p out && cp data.bin out/data.bin
image:
  from: scratch
  copy:
    - {src: out/data.bin, dest: /data.bin}
YAML

s_build() { # N [ARGS...]: build to tag N with metadata m$N.json; sets RC
    local n=$1
    shift
    RC=0
    af_build "$AF_TMP/b$n.out" --platform linux/amd64 --metadata-file "$AF_TMP/m$n.json" \
        -t "$AF_REGISTRY/cache/app:$n" --push "$@" "$AF_TMP/ctx" || RC=$?
}
s_meta() { jq -r "$2" "$AF_TMP/m$1.json"; } # N FILTER

# --- 1. first build: built and recorded -------------------------------------------
s_build 1
af_assert_eq 0 "$RC" "first build: $(cat "$AF_TMP/b1.out")"
af_assert_eq false "$(s_meta 1 '.slices[0].cached')" "the first build is not cached"
key=$(s_meta 1 '.slices[0].cache_key')
af_assert_match "$key" '^sha256:[0-9a-f]{64}$' "the slice has a key"
sent1=$(s_meta 1 '.slices[0].context_bytes_sent')
((sent1 > 300000)) || af_fail "the first build sent $sent1 context bytes"
tags=$(af_skopeo list-tags --tls-verify=false "docker://$AF_REGISTRY/cache/app")
af_assert_contains "$tags" "archfarm-cache-${key#sha256:}" "the key's tag is in the repository"
slice1=$(s_meta 1 '.slices[0].digest')
af_assert_eq "$slice1" "$(af_tag_digest "cache/app:archfarm-cache-${key#sha256:}")" \
    "the cache tag names the slice's manifest"
index1=$(af_tag_digest cache/app:1)
# The stat cache records a pack only when no entry changed within 50 ms
# before its walk (git's racily-clean rule). The fixture was just written
# (its ctimes are now), so build 1 may have recorded nothing; a second
# pack of the same inputs, a second or more later, certainly records.
if [[ -z $(ls -A "$ARCHFARM_CACHE_DIR/contexts" 2>/dev/null) ]]; then
    s_build 1b
    af_assert_eq 0 "$RC" "build 1b: $(cat "$AF_TMP/b1b.out")"
fi
[[ -n $(ls -A "$ARCHFARM_CACHE_DIR/contexts" 2>/dev/null) ]] || af_fail "the stat cache recorded nothing"

# --- 2. unchanged, no agent: nothing built, nothing sent, nothing pushed ----------------
af_agent_stop amd64
s_build 2
out=$(cat "$AF_TMP/b2.out")
af_assert_eq 0 "$RC" "the unchanged build with no agent: $out"
af_assert_contains "$out" "(unchanged since it was packed)" "the context digest came from the stat cache"
af_assert_contains "$out" "cached $slice1" "the slice came from the slice cache"
if grep -q "packing context" "$AF_TMP/b2.out"; then af_fail "the context was packed again"; fi
af_assert_eq true "$(s_meta 2 '.slices[0].cached')" "metadata: cached"
af_assert_eq 0 "$(s_meta 2 '.slices[0].context_bytes_sent')" "metadata: 0 context bytes sent"
af_assert_eq 0 "$(s_meta 2 '.slices[0].pushed_bytes')" "metadata: 0 blob bytes pushed"
af_assert_eq "$index1" "$(af_tag_digest cache/app:2)" "the same index as the first build"

# --- 3. --no-cache: built again, the same bytes ---------------------------------------
AF_INV_HOSTS=()
af_agent_start amd64b linux/amd64
af_inventory_write "$AF_TMP/inv.yaml"
s_build 3 --no-cache
af_assert_eq 0 "$RC" "--no-cache: $(cat "$AF_TMP/b3.out")"
af_assert_eq false "$(s_meta 3 '.slices[0].cached')" "--no-cache builds"
af_assert_contains "$(cat "$AF_TMP/b3.out")" "packing context" "--no-cache packs the context"
af_assert_eq "$index1" "$(af_tag_digest cache/app:3)" "a rebuild gives the same index"

# --- 4. touch: packed again, same digest, still cached --------------------------------
touch -d '-30 seconds' "$AF_TMP/ctx/data.bin"
s_build 4
af_assert_eq 0 "$RC" "after touch: $(cat "$AF_TMP/b4.out")"
af_assert_contains "$(cat "$AF_TMP/b4.out")" "packing context" "a touched file is read again"
af_assert_eq true "$(s_meta 4 '.slices[0].cached')" "same bytes: the slice cache hits"
af_assert_eq 0 "$(s_meta 4 '.slices[0].context_bytes_sent')" "nothing sent"

# --- 5. one changed file: a new key, built --------------------------------------------
printf 'x' >>"$AF_TMP/ctx/data.bin"
touch -d '-20 seconds' "$AF_TMP/ctx/data.bin"
s_build 5
af_assert_eq 0 "$RC" "after a change: $(cat "$AF_TMP/b5.out")"
af_assert_eq false "$(s_meta 5 '.slices[0].cached')" "a changed context is built"
af_assert_ne "$key" "$(s_meta 5 '.slices[0].cache_key')" "with another key"
af_assert_ne "$index1" "$(af_tag_digest cache/app:5)" "into another index"
af_log "PASS"
