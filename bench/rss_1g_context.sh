#!/usr/bin/env bash
# rss_1g_context.sh -- peak memory of the coordinator and an agent when the
# build context is 1 GiB, next to peers measured in the same run.
#
#   bench/rss_1g_context.sh            # after cmake --build build
#   AF_BIN=build-x/bin bench/rss_1g_context.sh
#
# The context holds one 1 GiB incompressible file and a tiny one; the recipe
# copies only the tiny file into the image, so the run is dominated by
# packing, digesting and streaming the context (coordinator -> agent, credit
# flow control, chunks straight to disk). A local docker-registry and one
# agent (linux/amd64) serve the build. Measured:
#   - coordinator: peak RSS and wall time (/usr/bin/time -v), first build
#     (context sent) and second build (agent already holds the context);
#   - agent: peak RSS over both builds (VmHWM from /proc/PID/status);
#   - peers on the same file: `sha256sum` and `openssl dgst -sha256` (read +
#     digest once), `tar -c | openssl dgst` (what packing costs at least) and
#     a plain TCP transfer over loopback into a file (python3, sendfile).
# Results go to bench/results/rss_1g_context.txt. Acceptance (issue 2):
# coordinator and agent peak RSS < 100 MiB; the script exits 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export AF_SOURCE_DIR=$ROOT AF_BIN=${AF_BIN:-$ROOT/build/bin} AF_TIMEOUT=${AF_TIMEOUT:-1800}
SIZE=$((1024 * 1024 * 1024))
LIMIT_KB=$((100 * 1024))
RESULTS=$ROOT/bench/results/rss_1g_context.txt

# shellcheck source=../tests/lib/farm.sh
source tests/lib/farm.sh
af_farm_init
command -v /usr/bin/time >/dev/null || af_fail "/usr/bin/time missing (apt-get install time)"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
maxrss_kb() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
cpu_s() { awk -F': ' '/User time|System time/ { t += $2 } END { printf "%.2f", t }' "$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo "== preparing a 1 GiB incompressible context in $AF_TMP"
mkdir -p "$AF_TMP/ctx"
# AES-CTR keystream: incompressible, fast, and the same bytes on every run.
# (openssl dies of SIGPIPE when head has enough: that is expected)
{ openssl enc -aes-128-ctr -pass pass:archfarm-bench -nosalt -pbkdf2 -in /dev/zero 2>/dev/null || true; } |
    head -c "$SIZE" >"$AF_TMP/ctx/big.bin"
[[ $(stat -c %s "$AF_TMP/ctx/big.bin") == "$SIZE" ]] || af_fail "could not write 1 GiB"
echo "tiny" >"$AF_TMP/ctx/tiny.txt"
cat >"$AF_TMP/ctx/archfarm.yaml" <<'EOF'
build:
  run: echo "context holds $(wc -c < big.bin) bytes in big.bin"
image:
  copy:
    - {src: tiny.txt, dest: /tiny.txt}
EOF
sync

echo "== peers"
t0=$(now)
/usr/bin/time -v -o "$AF_TMP/sha.time" sha256sum "$AF_TMP/ctx/big.bin" >/dev/null
t1=$(now)
sha_wall=$(elapsed "$t0" "$t1")
sha_rss=$(maxrss_kb "$AF_TMP/sha.time")
t0=$(now)
openssl dgst -sha256 "$AF_TMP/ctx/big.bin" >/dev/null
t1=$(now)
ossl_wall=$(elapsed "$t0" "$t1")
t0=$(now)
tar -cf - -C "$AF_TMP/ctx" . | openssl dgst -sha256 >/dev/null
t1=$(now)
tar_wall=$(elapsed "$t0" "$t1")
tcp_wall=$(python3 - "$AF_TMP/ctx/big.bin" "$AF_TMP/tcp.out" <<'EOF'
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
)
[[ $(stat -c %s "$AF_TMP/tcp.out") == "$SIZE" ]] || af_fail "TCP baseline transferred a short file"
rm -f "$AF_TMP/tcp.out"
echo "sha256sum: ${sha_wall}s; openssl dgst: ${ossl_wall}s; tar | openssl dgst: ${tar_wall}s; plain TCP loopback: ${tcp_wall}s"

echo "== farm"
af_farm_registry_start
af_agent_start bench-amd64 linux/amd64
af_inventory_write "$AF_TMP/inventory.yaml"
agent_pid=${AF_AGENT_PID[bench-amd64]}

s_coordinator() { # NAME TAG
    local t0 t1 rc=0
    t0=$(now)
    /usr/bin/time -v -o "$AF_TMP/$1.time" timeout "$AF_TIMEOUT" "$AF_BIN/archfarm" -i "$AF_INVENTORY" \
        build --platform linux/amd64 -t "$AF_REGISTRY/bench:$2" --push --progress plain \
        --insecure-registry "$AF_REGISTRY" "$AF_TMP/ctx" >"$AF_TMP/$1.out" 2>&1 || rc=$?
    t1=$(now)
    ((rc == 0)) || af_fail "archfarm build ($1) exited $rc: $(tail -n 20 "$AF_TMP/$1.out")"
    elapsed "$t0" "$t1"
}
cold_wall=$(s_coordinator cold 1)
cold_rss=$(maxrss_kb "$AF_TMP/cold.time")
echo "coordinator, context sent: ${cold_wall}s, peak RSS $(mib "$cold_rss") MiB"
warm_wall=$(s_coordinator warm 2)
warm_rss=$(maxrss_kb "$AF_TMP/warm.time")
echo "coordinator, context cached on the agent: ${warm_wall}s, peak RSS $(mib "$warm_rss") MiB"
agent_rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$agent_pid/status")
echo "agent peak RSS (VmHWM): $(mib "$agent_rss") MiB"
af_assert_contains "$(cat "$AF_TMP/cold.out")" "1073741824 bytes" "the build step saw the whole 1 GiB file"

coord_rss=$((cold_rss > warm_rss ? cold_rss : warm_rss))
verdict=PASS
((coord_rss < LIMIT_KB && agent_rss < LIMIT_KB)) || verdict=FAIL

mkdir -p "$(dirname "$RESULTS")"
{
    echo "# bench/rss_1g_context.sh -- $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
    echo "# archfarm $("$AF_BIN/archfarm" --version 2>&1 | head -n 1)"
    echo "context_bytes                 $SIZE"
    echo "coordinator_peak_rss_mib      $(mib "$coord_rss")"
    echo "agent_peak_rss_mib            $(mib "$agent_rss")"
    echo "build_wall_s_context_sent     $cold_wall"
    echo "build_wall_s_context_cached   $warm_wall"
    echo "coordinator_cpu_s_sent        $(cpu_s "$AF_TMP/cold.time")"
    echo "coordinator_cpu_s_cached      $(cpu_s "$AF_TMP/warm.time")"
    echo "peer_sha256sum_wall_s         $sha_wall   (peak RSS $(mib "$sha_rss") MiB)"
    echo "peer_openssl_dgst_wall_s      $ossl_wall"
    echo "peer_tar_pipe_openssl_s       $tar_wall"
    echo "peer_plain_tcp_loopback_s     $tcp_wall"
    echo "ratio_build_vs_sha256sum      $(ratio "$cold_wall" "$sha_wall")"
    echo "ratio_build_vs_openssl_dgst   $(ratio "$cold_wall" "$ossl_wall")"
    echo "ratio_build_vs_tar_openssl    $(ratio "$cold_wall" "$tar_wall")"
    echo "ratio_build_vs_plain_tcp      $(ratio "$cold_wall" "$tcp_wall")"
    echo "ratio_cached_vs_sha256sum     $(ratio "$warm_wall" "$sha_wall")"
    echo "acceptance_rss_below_100_mib  $verdict"
} | tee "$RESULTS"
[[ $verdict == PASS ]] || af_fail "peak RSS above 100 MiB (coordinator $(mib "$coord_rss"), agent $(mib "$agent_rss"))"
