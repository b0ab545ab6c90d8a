#!/usr/bin/env bash
# test_imagetools_copy -- `imagetools create` across repositories and
# registries, --append and --annotation, checked with skopeo.
#
# Two docker-registry instances (REG, REG2) hold single-platform images
# made by fixtures/make_oci_image.py and pushed with skopeo:
#   1. create -t REG/c:1 REG/a:amd64 REG/b:arm64 (two repositories, one
#      registry: blobs mounted): skopeo inspect --raw of REG/c:1 lists both
#      platforms, imagetools inspect --raw prints those exact bytes, and
#      skopeo copies each platform out of REG/c (so every blob is there);
#   2. create -t REG/d:1 REG2/e:s390x (another registry: blobs copied),
#      skopeo pulls it from REG/d;
#   3. --append -t REG/c:1 REG2/e:s390x REG/f:amd64 keeps arm64, replaces
#      amd64 with f's manifest, adds s390x; --annotation lands on the index;
#   4. a manifest:-prefixed --annotation is a usage error (exit 2);
#   5. --manifest-format docker over Docker v2 sources (pushed by skopeo
#      --format v2s2) writes a Docker manifest list skopeo pulls per
#      platform; an OCI source is refused (exit 1) naming it.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"
source "$AF_SOURCE_DIR/tests/lib/registry.sh"

af_farm_init
command -v skopeo >/dev/null || af_fail "skopeo is not installed"
AF_REGISTRY_STARTED=1
af_registry_start "$AF_TMP/registry2" || af_fail "cannot start the second registry"
REG2=$AF_REGISTRY REG2_PID=$AF_REGISTRY_PID
AF_CLEANUP+=("kill $REG2_PID; wait $REG2_PID")
unset AF_REGISTRY_PID
af_registry_start "$AF_TMP/registry" || af_fail "cannot start the registry"
REG=$AF_REGISTRY
af_log "registries $REG and $REG2"

MK=$AF_SOURCE_DIR/tests/integration/fixtures/make_oci_image.py
s_image() { # REF ARCH TEXT [SKOPEO-OPTS...]: builds and pushes a one-platform image
    local d=$AF_TMP/layout-${RANDOM}
    python3 "$MK" "$d" t "$2" "$3" >/dev/null
    skopeo copy "${@:4}" --dest-tls-verify=false "oci:$d:t" "docker://$1" >"$AF_TMP/skopeo.log" 2>&1 ||
        af_fail "skopeo copy to $1: $(cat "$AF_TMP/skopeo.log")"
}
s_image "$REG/a:amd64" amd64 "a for amd64"
s_image "$REG/b:arm64" arm64 "b for arm64"
s_image "$REG/f:amd64" amd64 "f for amd64"
s_image "$REG2/e:s390x" s390x "e for s390x"
IT() { timeout -k 5 120 "$AF_BIN/archfarm" imagetools "$@"; }
s_platforms() { # REF: the index's os/arch list, sorted
    skopeo inspect --raw --tls-verify=false "docker://$1" |
        jq -r '.manifests[] | .platform.os + "/" + .platform.architecture' | sort | tr '\n' ' '
}
s_pull_each() { # REF: skopeo copies every platform of REF out (all blobs present)
    local p arch
    for p in $(s_platforms "$1"); do
        arch=${p#*/}
        skopeo copy --src-tls-verify=false --override-arch "$arch" "docker://$1" \
            "oci:$AF_TMP/out-$arch-$RANDOM:x" >"$AF_TMP/pull.log" 2>&1 ||
            af_fail "skopeo could not pull $p of $1: $(cat "$AF_TMP/pull.log")"
    done
}

# --- 1. two repositories of one registry ------------------------------------
IT create -t "$REG/c:1" "$REG/a:amd64" "$REG/b:arm64" >"$AF_TMP/c1.out" 2>"$AF_TMP/c1.err" ||
    af_fail "create across repositories failed: $(cat "$AF_TMP/c1.err")"
af_assert_eq "linux/amd64 linux/arm64 " "$(s_platforms "$REG/c:1")" "REG/c:1 lists both platforms"
skopeo inspect --raw --tls-verify=false "docker://$REG/c:1" >"$AF_TMP/c1.want"
IT inspect --raw "$REG/c:1" >"$AF_TMP/c1.raw"
cmp -s "$AF_TMP/c1.want" "$AF_TMP/c1.raw" || af_fail "imagetools inspect --raw differs from skopeo's bytes"
af_assert_eq "sha256:$(sha256sum <"$AF_TMP/c1.want" | cut -d' ' -f1)" "$(cat "$AF_TMP/c1.out")" \
    "the printed digest is the index's"
s_pull_each "$REG/c:1"
printf 'ok: skopeo pulls each platform of REG/c:1\n' >&2

# --- 2. another registry ------------------------------------------------------
IT create -t "$REG/d:1" "$REG2/e:s390x" >/dev/null 2>"$AF_TMP/d1.err" ||
    af_fail "create across registries failed: $(cat "$AF_TMP/d1.err")"
af_assert_eq "linux/s390x " "$(s_platforms "$REG/d:1")" "REG/d:1 holds e's platform"
s_pull_each "$REG/d:1"
printf 'ok: the copy from another registry is complete\n' >&2

# --- 3. --append and --annotation --------------------------------------------
arm=$(skopeo inspect --raw --tls-verify=false "docker://$REG/c:1" |
    jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest')
fdig=$(skopeo inspect --raw --tls-verify=false "docker://$REG/f:amd64" | sha256sum | cut -d' ' -f1)
IT create --append --annotation index:org.example.note=appended --annotation a.b=c \
    -t "$REG/c:1" "$REG2/e:s390x" "$REG/f:amd64" >/dev/null 2>"$AF_TMP/c2.err" ||
    af_fail "--append failed: $(cat "$AF_TMP/c2.err")"
raw=$(skopeo inspect --raw --tls-verify=false "docker://$REG/c:1")
af_assert_eq "linux/amd64 linux/arm64 linux/s390x " "$(s_platforms "$REG/c:1")" "--append adds s390x"
af_assert_eq "$arm" "$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' <<<"$raw")" \
    "--append keeps the arm64 entry"
af_assert_eq "sha256:$fdig" "$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' <<<"$raw")" \
    "--append replaces amd64 with f's manifest"
af_assert_eq "appended c" "$(jq -r '.annotations["org.example.note"] + " " + .annotations["a.b"]' <<<"$raw")" \
    "--annotation lands on the index"
s_pull_each "$REG/c:1"

# --- 4. annotations imagetools create cannot place -----------------------------
rc=0
IT create --annotation manifest:k=v -t "$REG/c:2" "$REG/a:amd64" >/dev/null 2>"$AF_TMP/c3.err" || rc=$?
af_assert_eq 2 "$rc" "a manifest: annotation is a usage error"
af_assert_contains "$(cat "$AF_TMP/c3.err")" "annotates the index only" "the error says why"

# --- 5. a Docker manifest list ---------------------------------------------------
s_image "$REG/da:amd64" amd64 "da for amd64" --format v2s2
s_image "$REG/db:arm64" arm64 "db for arm64" --format v2s2
IT create --manifest-format docker -t "$REG/l:1" "$REG/da:amd64" "$REG/db:arm64" >/dev/null \
    2>"$AF_TMP/l1.err" || af_fail "--manifest-format docker failed: $(cat "$AF_TMP/l1.err")"
raw=$(skopeo inspect --raw --tls-verify=false "docker://$REG/l:1")
af_assert_eq "application/vnd.docker.distribution.manifest.list.v2+json" "$(jq -r .mediaType <<<"$raw")" \
    "the list has the Docker manifest list media type"
af_assert_eq "application/vnd.docker.distribution.manifest.v2+json" \
    "$(jq -r '[.manifests[].mediaType] | unique | join(",")' <<<"$raw")" "its children are Docker v2 manifests"
s_pull_each "$REG/l:1"
rc=0
IT create --manifest-format docker -t "$REG/l:2" "$REG/a:amd64" >/dev/null 2>"$AF_TMP/l2.err" || rc=$?
af_assert_eq 1 "$rc" "an OCI source in a Docker list: exit 1"
af_assert_contains "$(cat "$AF_TMP/l2.err")" "not a Docker v2 manifest" "the error says why"
af_log "PASS"
