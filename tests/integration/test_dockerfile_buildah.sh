#!/usr/bin/env bash
# test_dockerfile_buildah -- issue 3 end to end: Dockerfile slices built by
# real buildah on three agents started with `--executor buildah`.
#
# 1. Three platforms (linux/amd64, linux/arm64, linux/arm/v7) build the
#    dockerfile-multiarch fixture: `FROM scratch AS stage` + `ARG TARGETARCH`
#    + COPY of the prebuilt static binary for that arch (cross-compiled here),
#    then a final `FROM scratch` copying it from the stage, with a LABEL
#    set from --build-arg. Checked with clients we did not write: skopeo
#    inspect --raw shows an index with exactly the three platforms; every
#    manifest/config validates against the OCI schemas; each config carries
#    the label byte for byte (shell metacharacters included) and the
#    platform; each binary, pulled with skopeo --override-arch, runs
#    (natively or under qemu-user) and names its arch; buildah's output was
#    streamed as LOG lines; no tag but the requested one exists (slices are
#    pushed by digest); nothing is left on the agents.
# 2. A mixed farm: a native-only agent (`--executor native`) next to the
#    engine agents. A Dockerfile build lands only on engine agents
#    (metadata slices[].node); a native recipe lands on either kind; a
#    Dockerfile build with only the native agent fails before any work
#    with exit 3.
#    A Dockerfile FROM the image just pushed (plain-HTTP registry) gets the
#    base's layers for the slice's platform under its own.
# 3. Cancel: SIGINT to the coordinator while buildah runs a 10-minute RUN
#    step (--isolation chroot) leaves no buildah process, no container
#    storage, no mount and no job dir behind.
# 4. The same for a slice killed by the agent's --job-timeout.
# 5. A failing step (COPY of a missing file) fails the build with buildah's
#    exit status and its own message, and cleans up the same way.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"
source "$AF_SOURCE_DIR/tests/lib/engines.sh"

af_farm_init
af_engines_require
af_farm_registry_start
af_agent_start b-amd64 linux/amd64 --executor buildah
af_agent_start b-arm64 linux/arm64 --executor buildah
af_agent_start b-armv7 linux/arm/v7 --executor buildah
af_agent_start n-amd64 linux/amd64 --executor native
ENGINE_INV="$AF_TMP/engines.yaml"
af_engines_inventory "$ENGINE_INV" b-amd64 b-arm64 b-armv7

FIX="$AF_SOURCE_DIR/tests/integration/fixtures/dockerfile-multiarch"
CTX="$AF_TMP/ctx"
mkdir -p "$CTX/bin"
cp "$FIX/Dockerfile" "$FIX/hello.c" "$CTX/"
af_log "cross-compiling the fixture's static binaries"
gcc -static -O2 -o "$CTX/bin/hello-amd64" "$FIX/hello.c"
aarch64-linux-gnu-gcc -static -O2 -o "$CTX/bin/hello-arm64" "$FIX/hello.c"
arm-linux-gnueabihf-gcc -static -O2 -o "$CTX/bin/hello-arm" "$FIX/hello.c"

# --- 1. three platforms ------------------------------------------------------
LABEL='multi arch; $(id) `uname` "q" '\''s'\'' --output=type=local'
REPO="$AF_REGISTRY/df/hello"
PLATFORMS=(linux/amd64 linux/arm64 linux/arm/v7)
af_log "archfarm build (Dockerfile) --platform linux/amd64,linux/arm64,linux/arm/v7 -t $REPO:1 --push"
rc=0
AF_INVENTORY=$ENGINE_INV af_build "$AF_TMP/build.out" --platform linux/amd64,linux/arm64,linux/arm/v7 \
    -t "$REPO:1" --push --build-arg "LABEL_VALUE=$LABEL" --build-arg TARGETARCH=s390x --metadata-file "$AF_TMP/m.json" "$CTX" ||
    rc=$?
cat "$AF_TMP/build.out" >&2
af_assert_eq 0 "$rc" "archfarm build exit status"
out=$(cat "$AF_TMP/build.out")
af_assert_match "$out" '^\[linux/arm64 b-arm64\] \[1/2\] STEP 1/3: FROM scratch AS stage' \
    "buildah's output streamed line by line as LOG"
af_assert_match "$out" '^\[linux/arm/v7 b-armv7\] .*buildah .*build --platform linux/arm/v7 ' \
    "the engine command line is shown"
af_assert_match "$out" '^\[linux/arm64 b-arm64\] build arg TARGETARCH ignored' \
    "a TARGETARCH build arg is dropped: the slice's platform wins (binaries checked below)"

raw=$(af_skopeo inspect --raw --tls-verify=false "docker://$REPO:1")
printf '%s' "$raw" >"$AF_TMP/index.json"
af_oci_validate index "$AF_TMP/index.json"
got=$(jq -r '.manifests[].platform | [.os, .architecture, .variant // empty] | join("/")' \
    "$AF_TMP/index.json" | sort | tr '\n' ' ')
af_assert_eq "linux/amd64 linux/arm/v7 linux/arm64 " "$got" "index platforms (skopeo inspect --raw)"
af_assert_eq "$(jq -r '."containerimage.digest"' "$AF_TMP/m.json")" "$(af_tag_digest df/hello:1)" \
    "metadata containerimage.digest is the tag's index"

for p in "${PLATFORMS[@]}"; do
    IFS=/ read -r os arch variant <<<"$p"
    d=$(jq -r --arg a "$arch" --arg v "$variant" \
        '.manifests[] | select(.platform.architecture == $a and (.platform.variant // "") == $v) | .digest' \
        "$AF_TMP/index.json")
    af_manifest_raw "df/hello@$d" >"$AF_TMP/manifest-$arch$variant.json"
    af_oci_validate manifest "$AF_TMP/manifest-$arch$variant.json"
    cfg=$(jq -r .config.digest "$AF_TMP/manifest-$arch$variant.json")
    af_blob df/hello "$cfg" >"$AF_TMP/config-$arch$variant.json"
    af_oci_validate config "$AF_TMP/config-$arch$variant.json"
    af_assert_eq "$LABEL" "$(jq -r '.config.Labels["org.example.test"]' "$AF_TMP/config-$arch$variant.json")" \
        "$p config carries the LABEL from --build-arg, byte for byte"
    af_assert_eq "$os/$arch${variant:+/$variant}" \
        "$(jq -r '[.os, .architecture, .variant // empty] | join("/")' "$AF_TMP/config-$arch$variant.json")" \
        "$p config os/architecture/variant"
    af_assert_eq "1970-01-01T00:00:00Z" "$(jq -r .created "$AF_TMP/config-$arch$variant.json")" \
        "$p config created = SOURCE_DATE_EPOCH (buildah --timestamp)"
    af_pull_rootfs "$REPO:1" "$p" "$AF_TMP/pull-$arch$variant"
    q=$(af_qemu_for "$p")
    ran=$($q "$AF_TMP/pull-$arch$variant/rootfs/hello")
    af_assert_eq "hello from $arch" "$ran" "$p binary runs${q:+ under $q} and reports its arch"
    node=$(jq -r --arg p "$p" '.slices[] | select(.platform == $p) | .node' "$AF_TMP/m.json")
    af_assert_eq "b-${arch}${variant}" "$node" "$p built on its engine agent"
done
tags=$(curl -fsS "http://$AF_REGISTRY/v2/df/hello/tags/list" | jq -r '.tags | sort | join(",")')
af_assert_eq "1" "$tags" "only the requested tag exists: slices were pushed by digest"
for n in b-amd64 b-arm64 b-armv7; do
    af_wait_until 20 "$n to remove its job dir" af_agent_no_job_dirs "$n"
done
af_engines_assert_clean "after the three-platform build"

# --- 1b. FROM an image in the registry (insecure pull, index -> platform) -------
BASED="$AF_TMP/based"
mkdir -p "$BASED"
echo extra >"$BASED/extra"
printf 'FROM %s\nCOPY extra /extra\n' "$REPO:1" >"$BASED/Dockerfile"
rc=0
AF_INVENTORY=$ENGINE_INV af_build "$AF_TMP/based.out" --platform linux/arm64,linux/arm/v7 \
    -t "$AF_REGISTRY/df/based:1" --push "$BASED" || rc=$?
[[ $rc == 0 ]] || cat "$AF_TMP/based.out" >&2
af_assert_eq 0 "$rc" "FROM $REPO:1 build exit status"
af_pull_rootfs "$AF_REGISTRY/df/based:1" linux/arm/v7 "$AF_TMP/pull-based"
af_assert_eq "hello from arm" "$(qemu-arm-static "$AF_TMP/pull-based/rootfs/hello")" \
    "the base image's linux/arm/v7 layers came first"
af_assert_eq "extra" "$(cat "$AF_TMP/pull-based/rootfs/extra")" "the Dockerfile's own layer is on top"

# --- 2. mixed farm ------------------------------------------------------------
MIXED_INV="$AF_TMP/mixed.yaml"
af_engines_inventory "$MIXED_INV" n-amd64 b-amd64 b-arm64
for i in 1 2; do
    rc=0
    AF_INVENTORY=$MIXED_INV af_build "$AF_TMP/mixed-df-$i.out" --platform linux/amd64,linux/arm64 \
        -t "$AF_REGISTRY/df/mixed:$i" --build-arg LABEL_VALUE=mixed --metadata-file "$AF_TMP/mixed-df-$i.json" "$CTX" || rc=$?
    [[ $rc == 0 ]] || cat "$AF_TMP/mixed-df-$i.out" >&2
    af_assert_eq 0 "$rc" "mixed farm: Dockerfile build #$i exit status"
    af_assert_eq "b-amd64" "$(jq -r '.slices[] | select(.platform == "linux/amd64") | .node' \
        "$AF_TMP/mixed-df-$i.json")" "mixed farm: Dockerfile linux/amd64 slice #$i on the engine agent"
done

NATIVE="$AF_TMP/native"
mkdir -p "$NATIVE"
cat >"$NATIVE/archfarm.yaml" <<'EOF'
build:
  run: mkdir -p out && echo "$TARGETARCH" > out/arch
image:
  from: scratch
  copy:
    - {src: out/arch, dest: /arch}
EOF
NATIVE_INV="$AF_TMP/native.yaml"
af_engines_inventory "$NATIVE_INV" n-amd64 b-arm64
rc=0
AF_INVENTORY=$NATIVE_INV af_build "$AF_TMP/mixed-native.out" --platform linux/amd64,linux/arm64 \
    -t "$AF_REGISTRY/df/native:1" --metadata-file "$AF_TMP/mixed-native.json" "$NATIVE" || rc=$?
[[ $rc == 0 ]] || cat "$AF_TMP/mixed-native.out" >&2
af_assert_eq 0 "$rc" "mixed farm: native recipe exit status"
af_assert_eq "n-amd64 b-arm64" \
    "$(jq -r '[.slices[] | .node] | join(" ")' "$AF_TMP/mixed-native.json")" \
    "mixed farm: a native recipe runs on the native-only and on the engine agent"

ONLY_NATIVE_INV="$AF_TMP/only-native.yaml"
af_engines_inventory "$ONLY_NATIVE_INV" n-amd64
rc=0
AF_INVENTORY=$ONLY_NATIVE_INV af_build "$AF_TMP/no-engine.out" --platform linux/amd64 \
    -t "$AF_REGISTRY/df/none:1" "$CTX" || rc=$?
cat "$AF_TMP/no-engine.out" >&2
af_assert_eq 3 "$rc" "Dockerfile build with no engine agent: exit 3"
af_assert_match "$(cat "$AF_TMP/no-engine.out")" '[Dd]ockerfile' "the message says a Dockerfile engine is missing"
if grep -q 'sending build' "$AF_TMP/no-engine.out"; then
    af_fail "a BUILD was sent although no node can build the Dockerfile"
fi

# --- 3. cancel a running buildah slice ------------------------------------------
CX="$AF_TMP/cancel"
mkdir -p "$CX"
cp "$FIX/cancel/Dockerfile" "$CX/"
gcc -static -O2 -o "$CX/sleeper" "$FIX/cancel/sleeper.c"
CANCEL_INV="$AF_TMP/cancel.yaml"
af_engines_inventory "$CANCEL_INV" b-amd64
af_log "building a Dockerfile with a 10-minute RUN, then SIGINT to the coordinator"
timeout -k 10 "$AF_TIMEOUT" "$AF_BIN/archfarm" -i "$CANCEL_INV" build --progress plain \
    --insecure-registry "$AF_REGISTRY" --platform linux/amd64 -t "$AF_REGISTRY/df/cancel:1" --push "$CX" \
    >"$AF_TMP/cancel.out" 2>&1 &
coord=$!
af_wait_until 120 "the RUN step to tick" grep -q 'tick 1' "$AF_TMP/cancel.out"
running=$(af_engines_pids b-amd64)
[[ -n $running ]] || af_fail "no buildah process found while the RUN step ticks"
af_log "buildah processes while running: $(tr '\n' ' ' <<<"$running")"
af_assert_ne "" "$(find "${AF_AGENT_DIR[b-amd64]}/work/jobs" -path '*/buildah/root' 2>/dev/null)" \
    "container storage exists while building"
kill -INT "$coord"
rc=0
wait "$coord" || rc=$?
cat "$AF_TMP/cancel.out" >&2
af_assert_ne 0 "$rc" "interrupted coordinator exit status"
af_assert_match "$(cat "$AF_TMP/cancel.out")" 'cancel' "the slice is reported cancelled"
af_wait_until 30 "b-amd64 to remove its job dir" af_agent_no_job_dirs b-amd64
for pid in $running; do
    af_wait_until 10 "buildah process $pid to be gone" af_engines_pid_gone "$pid"
done
af_engines_assert_clean "after cancelling a running buildah slice"
if af_tag_digest df/cancel:1 >/dev/null; then
    af_fail "the cancelled build wrote a tag"
fi

# --- 4. a timed-out buildah slice cleans up the same way ---------------------------
af_agent_start t-amd64 linux/amd64 --executor buildah --job-timeout 3
TIMEOUT_INV="$AF_TMP/timeout.yaml"
af_engines_inventory "$TIMEOUT_INV" t-amd64
rc=0
AF_INVENTORY=$TIMEOUT_INV af_build "$AF_TMP/timeout.out" --platform linux/amd64 \
    -t "$AF_REGISTRY/df/timeout:1" --push "$CX" || rc=$?
cat "$AF_TMP/timeout.out" >&2
af_assert_eq 1 "$rc" "a slice past the agent's --job-timeout fails the build"
af_assert_match "$(cat "$AF_TMP/timeout.out")" 'timeout|timed out' "the slice is reported timed out"
af_wait_until 30 "t-amd64 to remove its job dir" af_agent_no_job_dirs t-amd64
af_engines_assert_clean "after a timed-out buildah slice"

# --- 5. a failing Dockerfile step is a build failure -----------------------------
BAD="$AF_TMP/bad"
mkdir -p "$BAD"
printf 'FROM scratch\nCOPY no-such-file /x\n' >"$BAD/Dockerfile"
rc=0
AF_INVENTORY=$CANCEL_INV af_build "$AF_TMP/bad.out" --platform linux/amd64 \
    -t "$AF_REGISTRY/df/bad:1" --push "$BAD" || rc=$?
cat "$AF_TMP/bad.out" >&2
af_assert_eq 1 "$rc" "a failing Dockerfile step fails the build"
af_assert_match "$(cat "$AF_TMP/bad.out")" 'buildah build exited with status [0-9]+' \
    "the failure names buildah and its exit status"
af_assert_match "$(cat "$AF_TMP/bad.out")" 'no-such-file' "buildah's own error reached the user"
af_wait_until 30 "b-amd64 to remove its job dir" af_agent_no_job_dirs b-amd64
af_engines_assert_clean "after a failed buildah slice"
af_log "PASS"
