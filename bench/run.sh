#!/usr/bin/env bash
# run.sh -- archfarm against its peers, one command per benchmark.
#
#   bench/run.sh [three_platform|rebuild|push|scale|concurrent|all]     (default: all)
#
# After `cmake -S . -B build && cmake --build build`. Each benchmark starts
# its own docker-registry and agents (tests/lib/farm.sh, loopback,
# plaintext transport), prints its figures and writes them, with the
# machine, the date and the exact commands, to bench/results/NAME.txt.
# docs/performance.md explains them.
#
#   three_platform  a three-platform image (linux/amd64, linux/arm64,
#                   linux/arm/v7: a per-arch static binary plus a distinct
#                   64 MiB incompressible asset per platform) built and
#                   pushed by archfarm (3 local agents, gzip and zstd
#                   layers) and by `buildah build --platform ... --manifest`
#                   + `buildah manifest push --all`; runs alternated, median
#                   of BENCH_RUNS (5); the wall-time ratio.
#   rebuild         a three-platform build of a 256 MiB context (3 local
#                   agents): the first build, an unchanged rebuild (warm
#                   stat cache, slice cache: BENCH_RUNS times, median), and
#                   a rebuild after a one-file change; wall time, context
#                   bytes sent and blob bytes pushed (the metadata file).
#   push            a 512 MiB incompressible layer blob pushed by
#                   archfarm's registry client (build/bench/af-bench-push,
#                   the agents' push path) and by `skopeo copy` from an OCI
#                   layout, to the same registry, alternated, median of
#                   BENCH_RUNS; MB/s next to `sha256sum` and a plain TCP
#                   copy over loopback as floors.
#   scale           BENCH_AGENTS (200) agents as local processes: `archfarm
#                   ls` and a trivial three-platform build: wall time and
#                   the coordinator's peak RSS (/usr/bin/time -v), median
#                   of 3.
#   concurrent      5 coordinators x 10 three-platform builds started at
#                   once (BENCH_COORDINATORS, BENCH_BUILDS_PER) against 10
#                   agents (max_jobs 2): all must complete; slices/second.
#
# Everything runs on this one machine: the "farm" shares its cores with
# the registry and the peers, so the figures are for this machine only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export AF_SOURCE_DIR=$ROOT AF_BIN=${AF_BIN:-$ROOT/build/bin} AF_TIMEOUT=${AF_TIMEOUT:-1800}
export AF_TEST_TIMEOUT=${AF_TEST_TIMEOUT:-7200}
RUNS=${BENCH_RUNS:-5}
RESULTS_DIR=$ROOT/bench/results
BENCH_PUSH=${BENCH_PUSH:-$ROOT/build/bench/af-bench-push}

what=${1:-all}
case $what in
three_platform | rebuild | push | scale | concurrent | all) ;;
-h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "bench/run.sh: unknown benchmark '$what' (three_platform|rebuild|push|scale|concurrent|all)" >&2; exit 2 ;;
esac

# shellcheck source=../tests/lib/farm.sh
source tests/lib/farm.sh
af_farm_init
for t in /usr/bin/time python3 jq skopeo buildah openssl; do
    command -v "$t" >/dev/null || af_fail "$t is missing (tests/lib/deps.sh installs it)"
done

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s / 1e6; else print "n/a" }'; }
maxrss_mib() { awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"; }
wall_of() { awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' "$1"; }
# keystream of AES-128-CTR keyed by $2: incompressible, fast, reproducible
noise() { { openssl enc -aes-128-ctr -pass "pass:$2" -nosalt -pbkdf2 -in /dev/zero 2>/dev/null || true; } | head -c "$1"; }
machine() {
    echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# host: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# archfarm $("$AF_BIN/archfarm" --version 2>&1 | head -n 1); $(buildah --version); $(skopeo --version)"
}
# line timestamps (seconds since start) on stdin, for where the time goes
stamp() { python3 -u -c 'import sys, time
t0 = time.monotonic()
for line in sys.stdin:
    sys.stdout.write("%7.2f %s" % (time.monotonic() - t0, line))'; }

af_farm_registry_start

# --- 1. three platforms: archfarm vs buildah ---------------------------------
bench_three_platform() {
    local out=$RESULTS_DIR/three_platform.txt ctx=$AF_TMP/tp-ctx i
    echo "== three_platform: preparing the context"
    mkdir -p "$ctx/bin" "$ctx/assets"
    local src=$ROOT/tests/integration/fixtures/cross-c/hello.c
    gcc -static -O2 -o "$ctx/bin/hello-amd64" "$src"
    aarch64-linux-gnu-gcc -static -O2 -o "$ctx/bin/hello-arm64" "$src"
    arm-linux-gnueabihf-gcc -static -O2 -o "$ctx/bin/hello-arm" "$src"
    for a in amd64 arm64 arm; do
        noise $((64 * 1024 * 1024)) "asset-$a" >"$ctx/assets/asset-$a.bin"
    done
    # the same recipe twice: archfarm.yaml declares what the step reads
    # (build.inputs: each agent is sent its own binary and asset), whole.yaml
    # does not (every agent is sent the whole context)
    cat >"$ctx/whole.yaml" <<'EOF'
# the same image as the Dockerfile beside it: the platform's binary and asset
build:
  run: |
    set -eu
    mkdir -p out
    ln -f "bin/hello-$TARGETARCH" out/hello
    ln -f "assets/asset-$TARGETARCH.bin" out/asset.bin
image:
  from: scratch
  copy:
    - {src: out/hello, dest: /hello}
    - {src: out/asset.bin, dest: /asset.bin}
  entrypoint: ["/hello"]
EOF
    { echo "build:"
      echo "  inputs: ['bin/hello-\${TARGETARCH}', 'assets/asset-\${TARGETARCH}.bin', run-id]"
      sed -n '/^build:/,$p' "$ctx/whole.yaml" | tail -n +2; } >"$ctx/archfarm.yaml"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
ARG TARGETARCH
COPY bin/hello-${TARGETARCH} /hello
COPY assets/asset-${TARGETARCH}.bin /asset.bin
ENTRYPOINT ["/hello"]
EOF
    AF_INV_HOSTS=()
    af_agent_start tp-amd64 linux/amd64
    af_agent_start tp-arm64 linux/arm64
    af_agent_start tp-armv7 linux/arm/v7
    af_inventory_write "$AF_TMP/tp-inventory.yaml"
    local broot=$AF_TMP/buildah-root brun=$AF_TMP/buildah-run
    mkdir -p "$broot" "$brun"
    local B=(buildah --root "$broot" --runroot "$brun" --storage-driver overlay)
    "${B[@]}" info >/dev/null 2>&1 || B=(buildah --root "$broot" --runroot "$brun" --storage-driver vfs)
    local plat=linux/amd64,linux/arm64,linux/arm/v7
    local af_gz=() af_zst=() af_whole=() bh=() t0 t1 rc
    run_archfarm() { # RUN COMPRESSION [RECIPE]
        local tag=af-$2-$1 recipe=${3:-archfarm.yaml}
        [[ $recipe == archfarm.yaml ]] || tag=af-whole-$1
        # a context of its own: the agents hold the last one they received
        echo "$1 $2 $recipe" >"$ctx/run-id"
        t0=$(now)
        rc=0
        # and a cache dir of its own: no index of an earlier tar, so no delta
        # (docs/protocol.md, Context deltas): the whole context is sent, cold
        ARCHFARM_CACHE_DIR=$AF_TMP/cache-$tag af_archfarm build --progress plain \
            --insecure-registry "$AF_REGISTRY" --platform "$plat" \
            -t "$AF_REGISTRY/$tag:1" --push --compression "$2" --metadata-file "$AF_TMP/$tag.json" \
            -f "$ctx/$recipe" "$ctx" 2>&1 | stamp >"$AF_TMP/$tag.log" || rc=$?
        t1=$(now)
        ((rc == 0)) || af_fail "archfarm run $1 ($2) failed: $(tail -n 20 "$AF_TMP/$tag.log")"
        elapsed "$t0" "$t1"
    }
    run_buildah() { # RUN
        t0=$(now)
        { "${B[@]}" build --platform "$plat" --manifest "bench-$1" -f "$ctx/Dockerfile" "$ctx" &&
            "${B[@]}" manifest push --all --tls-verify=false "bench-$1" "docker://$AF_REGISTRY/bh-$1:1"; } \
            2>&1 | stamp >"$AF_TMP/bh-$1.log" || af_fail "buildah run $1 failed: $(tail -n 20 "$AF_TMP/bh-$1.log")"
        t1=$(now)
        elapsed "$t0" "$t1"
        "${B[@]}" manifest rm "bench-$1" >/dev/null 2>&1 || true
        "${B[@]}" rmi --all --force >/dev/null 2>&1 || true
    }
    for ((i = 1; i <= RUNS; i++)); do
        # every build gets a new context digest (run-id): nothing is cached
        # on the agents, and every build pushes to new repositories
        echo "$i buildah" >"$ctx/run-id"
        echo "== three_platform run $i/$RUNS"
        if ((i % 2)); then
            af_gz+=("$(run_archfarm "$i" gzip)")
            af_zst+=("$(run_archfarm "$i" zstd)")
            af_whole+=("$(run_archfarm "$i" gzip whole.yaml)")
            bh+=("$(run_buildah "$i")")
        else
            bh+=("$(run_buildah "$i")")
            af_whole+=("$(run_archfarm "$i" gzip whole.yaml)")
            af_zst+=("$(run_archfarm "$i" zstd)")
            af_gz+=("$(run_archfarm "$i" gzip)")
        fi
        echo "   archfarm gzip ${af_gz[-1]} s, zstd ${af_zst[-1]} s, gzip whole context ${af_whole[-1]} s, buildah ${bh[-1]} s"
    done
    local m_gz m_zst m_whole m_bh
    m_gz=$(median "${af_gz[@]}")
    m_zst=$(median "${af_zst[@]}")
    m_whole=$(median "${af_whole[@]}")
    m_bh=$(median "${bh[@]}")
    # the content really is the same: same files in each platform's layers
    local d
    d=$(jq -r '.slices[] | select(.platform == "linux/arm64") | .digest' "$AF_TMP/af-gzip-1.json")
    af_manifest_raw "af-gzip-1@$d" | jq -e '.layers | length == 1' >/dev/null || af_fail "unexpected archfarm manifest"
    local ctx_bytes whole_bytes
    ctx_bytes=$(jq '."archfarm.totals".context_bytes_sent' "$AF_TMP/af-gzip-1.json")
    whole_bytes=$(jq '."archfarm.totals".context_bytes_sent' "$AF_TMP/af-whole-1.json")
    mkdir -p "$RESULTS_DIR"
    {
        machine
        echo "# agents: 3 local processes (linux/amd64, linux/arm64, linux/arm/v7), --insecure, one docker-registry"
        echo "# context: 3 static binaries + 3 x 64 MiB AES-CTR assets + run-id ($(du -sb "$ctx" | cut -f1) bytes)"
        echo "# archfarm: archfarm -i INV build --progress plain --insecure-registry REG --platform $plat -t REG/af-C-N:1 --push --compression C --metadata-file M -f CTX/archfarm.yaml CTX   (build.inputs: each agent is sent its binary and asset)"
        echo "# archfarm whole context: the same with -f CTX/whole.yaml (no build.inputs), gzip"
        echo "# buildah:  ${B[*]} build --platform $plat --manifest bench-N -f CTX/Dockerfile CTX && ${B[*]} manifest push --all --tls-verify=false bench-N docker://REG/bh-N:1"
        echo "# runs alternated (odd: archfarm gzip, zstd, whole, buildah; even: buildah, whole, zstd, gzip); every build has its own context (a run-id file), so the agents never hold it already, its own ARCHFARM_CACHE_DIR (no delta: the whole context is sent) and its own repositories"
        echo "archfarm_gzip_s      ${af_gz[*]}"
        echo "archfarm_zstd_s      ${af_zst[*]}"
        echo "archfarm_whole_s     ${af_whole[*]}"
        echo "buildah_s            ${bh[*]}"
        echo "median_archfarm_gzip $m_gz"
        echo "median_archfarm_zstd $m_zst"
        echo "median_archfarm_whole $m_whole"
        echo "median_buildah       $m_bh"
        echo "ratio_gzip_vs_buildah $(ratio "$m_gz" "$m_bh")"
        echo "ratio_zstd_vs_buildah $(ratio "$m_zst" "$m_bh")"
        echo "ratio_whole_vs_buildah $(ratio "$m_whole" "$m_bh")"
        echo "archfarm_context_bytes_sent_per_build $ctx_bytes"
        echo "archfarm_whole_context_bytes_sent_per_build $whole_bytes"
        echo "# where the time goes: archfarm gzip run 1 (seconds since start, progress lines)"
        grep -E 'context:|context for|sending build|context sent|running|packing layer|pushing layer|pushed manifest|done |verified|index ' \
            "$AF_TMP/af-gzip-1.log" | sed 's/^/#   /'
        echo "# buildah run 1"
        grep -E 'STEP|Writing manifest|Copying blob|Storing|Writing manifest list' "$AF_TMP/bh-1.log" | head -n 40 | sed 's/^/#   /'
    } | tee "$out"
    af_agent_stop tp-amd64 || true
    af_agent_stop tp-arm64 || true
    af_agent_stop tp-armv7 || true
}

# --- 2. rebuilds: unchanged, and after a one-file change -------------------------
bench_rebuild() {
    local out=$RESULTS_DIR/rebuild.txt ctx=$AF_TMP/rb-ctx
    local plat=linux/amd64,linux/arm64,linux/arm/v7
    echo "== rebuild: preparing a 256 MiB context"
    mkdir -p "$ctx/data"
    for k in 1 2 3 4; do noise $((64 * 1024 * 1024)) "rb-$k" >"$ctx/data/part-$k.bin"; done
    echo v1 >"$ctx/version.txt"
    cat >"$ctx/archfarm.yaml" <<'EOF'
build:
  run: |
    set -eu
    mkdir -p out
    cat version.txt > out/version.txt
    sha256sum data/*.bin > out/data.sha256
image:
  from: scratch
  copy:
    - {src: out/version.txt, dest: /version.txt}
    - {src: out/data.sha256, dest: /data.sha256}
EOF
    AF_INV_HOSTS=()
    af_agent_start rb-amd64 linux/amd64
    af_agent_start rb-arm64 linux/arm64
    af_agent_start rb-armv7 linux/arm/v7
    af_inventory_write "$AF_TMP/rb-inventory.yaml"
    local t0 t1 rc
    run_rb() { # NAME: one build to REG/rb:NAME, prints "wall sent pushed"
        t0=$(now)
        rc=0
        af_archfarm build --progress plain --insecure-registry "$AF_REGISTRY" --platform "$plat" \
            -t "$AF_REGISTRY/rb:$1" --push --metadata-file "$AF_TMP/rb-$1.json" "$ctx" \
            >"$AF_TMP/rb-$1.log" 2>&1 || rc=$?
        t1=$(now)
        ((rc == 0)) || af_fail "rebuild benchmark build $1 failed: $(tail -n 20 "$AF_TMP/rb-$1.log")"
        echo "$(elapsed "$t0" "$t1") $(jq -r '."archfarm.totals" | "\(.context_bytes_sent) \(.pushed_bytes)"' "$AF_TMP/rb-$1.json")"
    }
    local first unchanged=() un_s=() changed i
    first=$(run_rb first)
    for ((i = 1; i <= RUNS; i++)); do
        unchanged+=("$(run_rb "same-$i")")
        un_s+=("${unchanged[-1]%% *}")
    done
    echo v2 >"$ctx/version.txt" # one file changed (3 bytes)
    changed=$(run_rb changed)
    mkdir -p "$RESULTS_DIR"
    {
        machine
        echo "# agents: 3 local processes (linux/amd64, linux/arm64, linux/arm/v7), --insecure, one docker-registry"
        echo "# context: 4 x 64 MiB AES-CTR files + version.txt + archfarm.yaml ($(du -sb "$ctx" | cut -f1) bytes); the step reads every file"
        echo "# command: archfarm -i INV build --progress plain --insecure-registry REG --platform $plat -t REG/rb:NAME --push --metadata-file M CTX"
        echo "# columns: wall_s context_bytes_sent(total over slices) pushed_bytes(total)"
        echo "first_build            $first"
        for u in "${unchanged[@]}"; do echo "unchanged_rebuild      $u"; done
        echo "median_unchanged_s     $(median "${un_s[@]}")"
        echo "one_file_changed       $changed"
        echo "# one_file_changed: version.txt rewritten (3 bytes); every node holds the previous tar, so each is sent a delta (docs/protocol.md, Context deltas)"
    } | tee "$out"
    af_agent_stop rb-amd64 || true
    af_agent_stop rb-arm64 || true
    af_agent_stop rb-armv7 || true
}

# --- 3. push of a 512 MiB layer: archfarm vs skopeo ---------------------------
bench_push() {
    local out=$RESULTS_DIR/push.txt dir=$AF_TMP/push i
    [[ -x $BENCH_PUSH ]] || af_fail "$BENCH_PUSH missing (cmake --build build)"
    command -v pigz >/dev/null || af_fail "pigz is missing (tests/lib/deps.sh installs it)"
    mkdir -p "$dir"
    # make_layout N: an OCI layout $dir/layout-N holding one image whose layer
    # is a tar of 512 MiB of AES-CTR keystream (key N), gzip'd with pigz -0
    # (stored: it does not shrink). A new blob every run: skopeo remembers
    # where it pushed a blob (its blob info cache) and would mount it into
    # the next repository instead of uploading it again.
    make_layout() {
        local l=$dir/layout-$1
        rm -rf "$dir"/layout-* "$dir/big.bin"
        mkdir -p "$l/blobs/sha256"
        noise $((512 * 1024 * 1024)) "push-$1" >"$dir/big.bin"
        tar -cf - -C "$dir" big.bin | tee >(sha256sum | cut -d' ' -f1 >"$dir/diff_id") |
            pigz -0 >"$dir/layer.tgz"
        rm -f "$dir/big.bin"
        layer_digest=$(sha256sum "$dir/layer.tgz" | cut -d' ' -f1)
        layer_size=$(stat -c %s "$dir/layer.tgz")
        mv "$dir/layer.tgz" "$l/blobs/sha256/$layer_digest"
        printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
            "$(cat "$dir/diff_id")" >"$dir/config.json"
        local cfg_digest cfg_size m_digest m_size
        cfg_digest=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
        cfg_size=$(stat -c %s "$dir/config.json")
        mv "$dir/config.json" "$l/blobs/sha256/$cfg_digest"
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
            "$cfg_digest" "$cfg_size" "$layer_digest" "$layer_size" >"$dir/manifest.json"
        m_digest=$(sha256sum "$dir/manifest.json" | cut -d' ' -f1)
        m_size=$(stat -c %s "$dir/manifest.json")
        mv "$dir/manifest.json" "$l/blobs/sha256/$m_digest"
        printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
            "$m_digest" "$m_size" >"$l/index.json"
        echo '{"imageLayoutVersion":"1.0.0"}' >"$l/oci-layout"
        layout=$l
        blob=$l/blobs/sha256/$layer_digest
        sync
    }
    local layer_digest layer_size layout blob
    echo "== push: a 512 MiB incompressible layer in an OCI layout"
    make_layout 0

    echo "== push: floors"
    local sha=() tcp=() t0 t1
    for ((i = 1; i <= 3; i++)); do
        t0=$(now)
        sha256sum "$blob" >/dev/null
        t1=$(now)
        sha+=("$(elapsed "$t0" "$t1")")
        tcp+=("$(python3 - "$blob" "$dir/tcp.out" <<'EOF'
import socket, sys, threading, time
src, dst = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
def receive():
    conn, _ = srv.accept()
    with conn, open(dst, "wb") as f:
        while True:
            b = conn.recv(1 << 20)
            if not b:
                break
            f.write(b)
t = threading.Thread(target=receive)
t0 = time.monotonic()
t.start()
with socket.create_connection(srv.getsockname()) as s, open(src, "rb") as f:
    s.sendfile(f)
t.join()
print("%.2f" % (time.monotonic() - t0))
EOF
)")
        [[ $(stat -c %s "$dir/tcp.out") == "$layer_size" ]] || af_fail "TCP floor copied a short file"
        rm -f "$dir/tcp.out"
    done

    local af_push=() af_digest=() af_total=() sk=() line
    run_af() {
        line=$("$BENCH_PUSH" "$AF_REGISTRY" "afpush-$1" "$blob") || af_fail "af-bench-push failed"
        [[ $line == *"pushed=$layer_size"* ]] || af_fail "af-bench-push did not upload the blob: $line"
        af_push+=("$(sed 's/.*push_s=\([0-9.]*\).*/\1/' <<<"$line")")
        af_digest+=("$(sed 's/.*digest_s=\([0-9.]*\).*/\1/' <<<"$line")")
        af_total+=("$(awk -v a="${af_digest[-1]}" -v b="${af_push[-1]}" 'BEGIN { printf "%.2f", a + b }')")
    }
    run_sk() {
        t0=$(now)
        skopeo copy --dest-tls-verify=false "oci:$layout:bench" "docker://$AF_REGISTRY/skpush-$1:1" \
            >"$dir/skopeo-$1.log" 2>&1 || af_fail "skopeo copy failed: $(cat "$dir/skopeo-$1.log")"
        t1=$(now)
        sk+=("$(elapsed "$t0" "$t1")")
        # skopeo pushed the blob unchanged (no recompression) and uploaded it
        af_manifest_raw "skpush-$1:1" | jq -e --arg d "sha256:$layer_digest" '.layers[0].digest == $d' >/dev/null ||
            af_fail "skopeo changed the layer"
        if grep -q "skipped: already exists" "$dir/skopeo-$1.log"; then
            af_fail "skopeo did not upload the blob: $(cat "$dir/skopeo-$1.log")"
        fi
    }
    for ((i = 1; i <= RUNS; i++)); do
        echo "== push run $i/$RUNS"
        make_layout "$i"
        if ((i % 2)); then run_af "$i"; run_sk "$i"; else run_sk "$i"; run_af "$i"; fi
        echo "   archfarm push ${af_push[-1]} s (+ digest ${af_digest[-1]} s), skopeo copy ${sk[-1]} s"
    done
    local m_af m_afd m_aft m_sk m_sha m_tcp
    m_af=$(median "${af_push[@]}")
    m_afd=$(median "${af_digest[@]}")
    m_aft=$(median "${af_total[@]}")
    m_sk=$(median "${sk[@]}")
    m_sha=$(median "${sha[@]}")
    m_tcp=$(median "${tcp[@]}")
    mkdir -p "$RESULTS_DIR"
    {
        machine
        echo "# blob: tar of 512 MiB AES-CTR keystream, pigz -0 (stored): $layer_size bytes; a new one (new key) every run"
        echo "# archfarm: build/bench/af-bench-push REG afpush-N BLOB   (af_registry_blob_push: HEAD, POST, one streamed PUT; digest_s = sha256 of the file first)"
        echo "# skopeo:   skopeo copy --dest-tls-verify=false oci:LAYOUT-N:bench docker://REG/skpush-N:1   (blob + config + manifest)"
        echo "# floors:   sha256sum BLOB; python3 socket.sendfile of BLOB over 127.0.0.1 into a file"
        echo "# runs alternated (odd: archfarm first); both push the same new blob in each run"
        echo "archfarm_push_s        ${af_push[*]}"
        echo "archfarm_digest_s      ${af_digest[*]}"
        echo "archfarm_total_s       ${af_total[*]}"
        echo "skopeo_copy_s          ${sk[*]}"
        echo "sha256sum_s            ${sha[*]}"
        echo "tcp_loopback_s         ${tcp[*]}"
        echo "median_archfarm_push   $m_af s  $(mbps "$layer_size" "$m_af") MB/s"
        echo "median_archfarm_total  $m_aft s  $(mbps "$layer_size" "$m_aft") MB/s (digest $m_afd s + push)"
        echo "median_skopeo_copy     $m_sk s  $(mbps "$layer_size" "$m_sk") MB/s"
        echo "median_sha256sum       $m_sha s  $(mbps "$layer_size" "$m_sha") MB/s"
        echo "median_tcp_loopback    $m_tcp s  $(mbps "$layer_size" "$m_tcp") MB/s"
        echo "ratio_archfarm_push_vs_skopeo   $(ratio "$m_af" "$m_sk")"
        echo "ratio_archfarm_total_vs_skopeo  $(ratio "$m_aft" "$m_sk")"
    } | tee "$out"
}

# --- 4. scale: 200 agents ------------------------------------------------------
bench_scale() {
    local out=$RESULTS_DIR/scale.txt n=${BENCH_AGENTS:-200} i p
    ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true
    echo "== scale: starting $n agents"
    AF_INV_HOSTS=()
    local plats=(linux/amd64 linux/arm64 linux/arm/v7) t0 t1
    t0=$(now)
    for ((i = 0; i < n; i++)); do
        p=${plats[i % 3]}
        af_agent_start "s$i" "$p" >/dev/null 2>&1
    done
    t1=$(now)
    local start_s
    start_s=$(elapsed "$t0" "$t1")
    af_inventory_write "$AF_TMP/scale-inventory.yaml"
    local agents_rss_mib
    agents_rss_mib=$(for ((i = 0; i < n; i++)); do awk '/^VmRSS:/ { print $2 }' "/proc/${AF_AGENT_PID[s$i]}/status"; done |
        awk '{ s += $1 } END { printf "%.0f", s / 1024 }')
    local ctx=$AF_TMP/scale-ctx
    mkdir -p "$ctx"
    cat >"$ctx/archfarm.yaml" <<'EOF'
build:
  run: printf '%s\n' "$TARGETPLATFORM" >platform.txt
image:
  copy:
    - {src: platform.txt, dest: /platform.txt}
EOF
    local ls_s=() ls_rss=() b_s=() b_rss=() rc lines
    for ((i = 1; i <= 3; i++)); do
        echo "== scale run $i/3"
        rc=0
        /usr/bin/time -v -o "$AF_TMP/ls-$i.time" "$AF_BIN/archfarm" -i "$AF_INVENTORY" ls \
            >"$AF_TMP/ls-$i.out" 2>"$AF_TMP/ls-$i.err" || rc=$?
        ((rc == 0)) || af_fail "archfarm ls exited $rc: $(tail -n 5 "$AF_TMP/ls-$i.err")"
        lines=$(grep -c '^s[0-9]* .* ready ' "$AF_TMP/ls-$i.out" || true)
        ((lines == n)) || af_fail "archfarm ls shows $lines of $n nodes ready: $(grep -v ' ready ' "$AF_TMP/ls-$i.out" | head -n 5)"
        ls_s+=("$(wall_of "$AF_TMP/ls-$i.time")")
        ls_rss+=("$(maxrss_mib "$AF_TMP/ls-$i.time")")
        echo "$i" >"$ctx/run-id"
        rc=0
        /usr/bin/time -v -o "$AF_TMP/b-$i.time" "$AF_BIN/archfarm" -i "$AF_INVENTORY" build \
            --progress plain --insecure-registry "$AF_REGISTRY" --platform linux/amd64,linux/arm64,linux/arm/v7 \
            -t "$AF_REGISTRY/scale:$i" --push "$ctx" >"$AF_TMP/b-$i.out" 2>&1 || rc=$?
        ((rc == 0)) || af_fail "trivial build over $n agents exited $rc: $(tail -n 20 "$AF_TMP/b-$i.out")"
        b_s+=("$(wall_of "$AF_TMP/b-$i.time")")
        b_rss+=("$(maxrss_mib "$AF_TMP/b-$i.time")")
        echo "   ls ${ls_s[-1]} s ${ls_rss[-1]} MiB; build ${b_s[-1]} s ${b_rss[-1]} MiB"
    done
    mkdir -p "$RESULTS_DIR"
    {
        machine
        echo "# $n agents as local processes (--insecure, a third each for linux/amd64, linux/arm64, linux/arm/v7), one docker-registry"
        echo "# agents started in ${start_s} s (sequentially, each waited for); their RSS together: ${agents_rss_mib} MiB"
        echo "# ls:    /usr/bin/time -v archfarm -i INV ls"
        echo "# build: /usr/bin/time -v archfarm -i INV build --progress plain --insecure-registry REG --platform linux/amd64,linux/arm64,linux/arm/v7 -t REG/scale:N --push CTX   (step: printf; one tiny layer)"
        echo "ls_wall_s              ${ls_s[*]}"
        echo "ls_peak_rss_mib        ${ls_rss[*]}"
        echo "build_wall_s           ${b_s[*]}"
        echo "build_peak_rss_mib     ${b_rss[*]}"
        echo "median_ls              $(median "${ls_s[@]}") s  peak RSS $(median "${ls_rss[@]}") MiB"
        echo "median_build           $(median "${b_s[@]}") s  peak RSS $(median "${b_rss[@]}") MiB"
    } | tee "$out"
    af_agents_stop || true
}

# bench_concurrent: 5 coordinators (each its own cache dir and repository)
# launch 10 builds each at once, 50 three-platform builds in all, against 10
# agents (4 linux/amd64, 3 linux/arm64, 3 linux/arm/v7, max_jobs 2). Every
# build has its own context (no slice cache hit). All must complete; the
# figure is slices per second over the whole batch.
bench_concurrent() {
    local out=$RESULTS_DIR/concurrent.txt n_coord=${BENCH_COORDINATORS:-5} per=${BENCH_BUILDS_PER:-10}
    local plats=(linux/amd64 linux/amd64 linux/amd64 linux/amd64 linux/arm64 linux/arm64 linux/arm64
        linux/arm/v7 linux/arm/v7 linux/arm/v7) i c b ctx
    echo "== concurrent: starting 10 agents"
    AF_INV_HOSTS=()
    for ((i = 0; i < 10; i++)); do
        af_agent_start "c$i" "${plats[i]}" --max-jobs 2 >/dev/null 2>&1
    done
    af_inventory_write "$AF_TMP/concurrent-inventory.yaml"
    local total=$((n_coord * per)) t0 t1 pids=() ok=0 failed=0
    for ((c = 0; c < n_coord; c++)); do
        for ((b = 0; b < per; b++)); do
            ctx=$AF_TMP/cc-ctx-$c-$b
            mkdir -p "$ctx"
            printf '%s\n' "coordinator $c build $b" >"$ctx/run-id"
            printf '%s\n' 'build:' \
                '  run: cat run-id >out.txt; printf "%s\n" "$TARGETPLATFORM" >>out.txt' \
                'image:' '  copy:' '    - {src: out.txt, dest: /out.txt}' >"$ctx/archfarm.yaml"
        done
    done
    echo "== concurrent: $total builds from $n_coord coordinators at once"
    t0=$(now)
    for ((c = 0; c < n_coord; c++)); do
        for ((b = 0; b < per; b++)); do
            ARCHFARM_CACHE_DIR=$AF_TMP/cc-cache-$c "$AF_BIN/archfarm" -i "$AF_INVENTORY" build \
                --progress plain --insecure-registry "$AF_REGISTRY" \
                --platform linux/amd64,linux/arm64,linux/arm/v7 -t "$AF_REGISTRY/coord$c:b$b" --push \
                --metadata-file "$AF_TMP/cc-$c-$b.json" "$AF_TMP/cc-ctx-$c-$b" >"$AF_TMP/cc-$c-$b.out" 2>&1 &
            pids+=($!)
        done
    done
    for i in "${pids[@]}"; do
        if wait "$i"; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
    done
    t1=$(now)
    local wall indexes=0
    wall=$(elapsed "$t0" "$t1")
    # each published build's metadata names its index and three slices
    for ((c = 0; c < n_coord; c++)); do
        for ((b = 0; b < per; b++)); do
            if [[ -s $AF_TMP/cc-$c-$b.json ]] &&
                jq -e '.["containerimage.digest"] and (.slices | length == 3)' "$AF_TMP/cc-$c-$b.json" >/dev/null; then
                indexes=$((indexes + 1))
            fi
        done
    done
    mkdir -p "$RESULTS_DIR"
    {
        machine
        echo "# 10 agents as local processes (4 linux/amd64, 3 linux/arm64, 3 linux/arm/v7; --max-jobs 2; --insecure), one docker-registry"
        echo "# $n_coord coordinators x $per builds started at once; coordinator k: ARCHFARM_CACHE_DIR=cache-k, tags REG/coordK:bN; every context distinct"
        echo "# each: archfarm -i INV build --progress plain --insecure-registry REG --platform linux/amd64,linux/arm64,linux/arm/v7 -t REG/coordK:bN --push --metadata-file M CTX"
        echo "builds_total           $total"
        echo "builds_ok              $ok"
        echo "builds_failed          $failed"
        echo "indexes_with_3_slices  $indexes"
        echo "wall_s                 $wall"
        echo "slices_per_s           $(awk -v n="$((3 * ok))" -v w="$wall" 'BEGIN { printf "%.2f", n / w }')"
    } | tee "$out"
    af_agents_stop || true
    ((failed == 0)) || af_fail "$failed of $total concurrent builds failed (outputs in $AF_TMP/cc-*.out)"
}

case $what in
three_platform) bench_three_platform ;;
rebuild) bench_rebuild ;;
push) bench_push ;;
scale) bench_scale ;;
concurrent) bench_concurrent ;;
all)
    bench_three_platform
    bench_rebuild
    bench_push
    bench_scale
    bench_concurrent
    ;;
esac
echo "bench/run.sh $what: done (results in bench/results/)"
