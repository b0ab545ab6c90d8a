#!/usr/bin/env bash
# test_context_delta -- a changed context travels as its difference from the
# one the node already holds (docs/protocol.md, "Context deltas").
#
# With a real docker-registry, two agents and the real coordinator:
#   1. an 8.3 MiB context (eight 1 MiB random files and a 300,000-byte one)
#      is built for linux/amd64 only: the whole tar is sent;
#   2. the 300,000-byte file is rewritten and the image built for amd64 and
#      arm64: the amd64 node, which holds the first tar, is sent a delta of
#      less than 2 x 300,000 bytes + 64 KiB; the arm64 node, which holds
#      nothing, the whole tar. Both stores then hold the new tar, byte for
#      byte the same and named by its sha256, and the build step saw the new
#      file (the sha256 list it wrote into the image matches the context);
#   3. a file added and one removed: both nodes now get a small delta, and
#      the image is right again.
# Then, through tests/integration/raw_client.py (the wire protocol spoken
# directly), the agent side against a client that is not archfarm:
#   4. a delta crafted by Python against a tar the agent holds rebuilds the
#      new context (its build step sees the added file: exit 7);
#   5. hostile deltas -- a copy outside the base, a result that does not
#      match the announced digest, one cut short, bytes after the end, one
#      that grows past the announced size -- each end in RESULT failure
#      "infra" naming what was wrong; nothing enters the store, the job dir
#      goes, and the agent keeps serving.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_raw_client_init
af_farm_init
af_farm_registry_start
af_agent_start node-amd64 linux/amd64
af_agent_start node-arm64 linux/arm64
af_inventory_write "$AF_TMP/inventory.yaml"

ctx=$AF_TMP/ctx
mkdir -p "$ctx/data"
for i in 1 2 3 4 5 6 7 8; do head -c $((1024 * 1024)) /dev/urandom >"$ctx/data/f$i.bin"; done
CHANGED=300000
head -c $CHANGED /dev/urandom >"$ctx/data/change.bin"
cat >"$ctx/archfarm.yaml" <<'EOF'
build:
  run: |
    set -eu
    mkdir -p out
    (cd data && sha256sum -- *) >out/sums.txt
image:
  from: scratch
  copy:
    - {src: out/sums.txt, dest: /sums.txt}
EOF
REF="$AF_REGISTRY/delta:1"

build() { af_build_ok "$1" "$2" "$REF" "$ctx"; } # build N PLATFORMS
slice() { af_slice "$@"; }                        # slice N PLATFORM FIELD

stored_tar() { # stored_tar NODE DIGEST: the path of that context in NODE's store
    printf '%s/work/contexts/%s.tar' "${AF_AGENT_DIR[$1]}" "${2#sha256:}"
}

check_tar() { # check_tar NODE DIGEST: the store holds it, and its bytes hash to its name
    local t
    t=$(stored_tar "$1" "$2")
    [[ -f $t ]] || af_fail "$1 does not hold context $2"
    af_assert_eq "${2#sha256:}" "$(sha256sum <"$t" | cut -d' ' -f1)" "$1: the stored tar hashes to its name"
}

check_image() { # check_image N PLATFORM: the sha256 list in the slice is the context's
    local digest layer want got
    digest=$(slice "$1" "$2" digest)
    layer=$(af_manifest_raw "delta@$digest" | jq -r '.layers[0].digest')
    got=$(af_blob "delta" "$layer" | tar -xzO sums.txt)
    want=$(cd "$ctx/data" && sha256sum -- *)
    af_assert_eq "$want" "$got" "build #$1 $2: the build step saw the context as it is now"
}

# --- 1. first build: the whole context --------------------------------------------
af_log "first build, amd64 only"
build 1 linux/amd64
mapfile -t held < <(cd "${AF_AGENT_DIR[node-amd64]}/work/contexts" && ls -- *.tar)
af_assert_eq 1 "${#held[@]}" "the amd64 node holds one context"
d1=sha256:${held[0]%.tar}
check_tar node-amd64 "$d1"
size1=$(stat -c %s "$(stored_tar node-amd64 "$d1")")
af_assert_eq "$size1" "$(slice 1 linux/amd64 context_bytes_sent)" "build 1: the whole tar was sent"
check_image 1 linux/amd64

# --- 2. one file changed: a delta to the node that holds the old tar ------------
af_log "one file changed, amd64 and arm64"
head -c $CHANGED /dev/urandom >"$ctx/data/change.bin"
build 2 linux/amd64,linux/arm64
mapfile -t new < <(cd "${AF_AGENT_DIR[node-arm64]}/work/contexts" && ls -- *.tar)
af_assert_eq 1 "${#new[@]}" "the arm64 node holds one context"
d2=sha256:${new[0]%.tar}
af_assert_ne "$d1" "$d2" "the context digest changed"
check_tar node-amd64 "$d2"
check_tar node-arm64 "$d2"
cmp -s "$(stored_tar node-amd64 "$d2")" "$(stored_tar node-arm64 "$d2")" ||
    af_fail "the tar rebuilt from the delta differs from the one sent whole"
size2=$(stat -c %s "$(stored_tar node-arm64 "$d2")")
sent_amd=$(slice 2 linux/amd64 context_bytes_sent)
sent_arm=$(slice 2 linux/arm64 context_bytes_sent)
((sent_amd > 0 && sent_amd < 2 * CHANGED + 65536)) ||
    af_fail "amd64 was sent $sent_amd bytes for a $CHANGED-byte change (bound $((2 * CHANGED + 65536)))"
af_assert_eq "$size2" "$sent_arm" "the arm64 node, which held nothing, was sent the whole tar"
printf 'ok: one %d-byte file changed in a %d-byte context: %d bytes sent as a delta\n' \
    "$CHANGED" "$size2" "$sent_amd" >&2
af_assert_contains "$(cat "$AF_TMP/build-2.out")" "sending a delta" "progress says a delta is sent"
af_assert_contains "$(cat "${AF_AGENT_DIR[node-amd64]}/stderr.log")" "rebuilt from a delta" \
    "the amd64 agent rebuilt the context from the delta"
check_image 2 linux/amd64
check_image 2 linux/arm64

# --- 3. a file added, one removed: both nodes hold the base now -------------------
af_log "a file added and one removed"
echo "added after build 2" >"$ctx/data/added.txt"
rm "$ctx/data/f3.bin"
build 3 linux/amd64,linux/arm64
for plat in linux/amd64 linux/arm64; do
    sent=$(slice 3 "$plat" context_bytes_sent)
    ((sent > 0 && sent < 65536)) || af_fail "$plat was sent $sent bytes for a one-line file (bound 65536)"
    printf 'ok: %s: a file added and one removed: %d bytes sent as a delta\n' "$plat" "$sent" >&2
    check_image 3 "$plat"
done

# --- 4./5. the agent side, from a client that is not archfarm ----------------------
A=${AF_AGENT_DIR[node-amd64]}
EP=tcp://127.0.0.1:${AF_AGENT_PORT[node-amd64]}
mkdir -p "$AF_TMP/raw"
"$PY" - "$AF_TMP/raw" <<'EOF'
import hashlib, io, os, struct, sys, tarfile
d = sys.argv[1]
recipe = b"build:\n  run: |\n    test -f extra.txt && exit 7\n    exit 3\nimage:\n  from: scratch\n"
big = os.urandom(2 * 1024 * 1024)

def tar(path, extra):
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        for name, data in [("archfarm.yaml", recipe), ("big.bin", big)] + extra:
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 0
            t.addfile(ti, io.BytesIO(data))
    return open(path, "rb").read()

C = lambda off, n: b"C" + struct.pack(">QQ", off, n)
D = lambda data: b"D" + struct.pack(">Q", len(data)) + data
base = tar(d + "/base.tar", [])

def delta(target):  # copy the common prefix from the base, send the rest
    n = 0
    while n < min(len(base), len(target)) and base[n] == target[n]:
        n += 1
    n -= n % 512
    return n, b"AFDELTA1" + C(0, n) + D(target[n:])

cases = {}
t = tar(d + "/good.tar", [("extra.txt", b"good\n")])
cases["good"] = delta(t)[1] + b"E"
t = tar(d + "/outside.tar", [("extra.txt", b"outside\n")])
cases["outside"] = b"AFDELTA1" + C(len(base) - 10, 11) + b"E"
t = tar(d + "/mismatch.tar", [("extra.txt", b"mismatch\n")])
n, dl = delta(t)
bad = bytearray(dl)
bad[-100] ^= 1
cases["mismatch"] = bytes(bad) + b"E"
t = tar(d + "/truncated.tar", [("extra.txt", b"truncated\n")])
cases["truncated"] = delta(t)[1]  # no 'E'
t = tar(d + "/trailing.tar", [("extra.txt", b"trailing\n")])
cases["trailing"] = delta(t)[1] + b"E" + b"more"
t = tar(d + "/grows.tar", [("extra.txt", b"grows\n")])
cases["grows"] = b"AFDELTA1" + C(0, len(base)) * 3 + b"E"
for name, body in cases.items():
    open(d + "/" + name + ".delta", "wb").write(body)
EOF

raw() { # raw NAME [ARGS]: a raw BUILD; its output in raw/NAME.out, RESULT last
    local name=$1 rc=0
    shift
    timeout -k 5 90 "$PY" "$RAW" build --endpoint "$EP" --job "raw-$name" \
        --repository "$AF_REGISTRY/raw" --timeout 60 "$@" >"$AF_TMP/raw/$name.out" 2>&1 || rc=$?
    af_assert_eq 0 "$rc" "raw $name: the agent answered with a RESULT"
}

af_log "raw client: the base, then a delta crafted by Python"
raw base --tar "$AF_TMP/raw/base.tar"
af_assert_eq 3 "$(tail -n 1 "$AF_TMP/raw/base.out" | jq -r .exit_code)" "raw base: its step ran (exit 3)"
raw good --tar "$AF_TMP/raw/good.tar" --base-tar "$AF_TMP/raw/base.tar" --delta "$AF_TMP/raw/good.delta"
af_assert_contains "$(cat "$AF_TMP/raw/good.out")" '"have_base": true' "raw good: ACCEPT has_base"
result=$(tail -n 1 "$AF_TMP/raw/good.out")
af_assert_eq build "$(jq -r .failure <<<"$result")" "raw good: the step ran"
af_assert_eq 7 "$(jq -r .exit_code <<<"$result")" "raw good: the step saw extra.txt (exit 7)"
check_tar node-amd64 "sha256:$(sha256sum <"$AF_TMP/raw/good.tar" | cut -d' ' -f1)"

expect_refused() { # CASE MESSAGE-FRAGMENT
    local c=$1 result digest
    raw "$c" --tar "$AF_TMP/raw/$c.tar" --base-tar "$AF_TMP/raw/base.tar" --delta "$AF_TMP/raw/$c.delta"
    af_assert_contains "$(cat "$AF_TMP/raw/$c.out")" '"have_base": true' "raw $c: ACCEPT have_base"
    result=$(tail -n 1 "$AF_TMP/raw/$c.out")
    af_assert_eq false "$(jq -r .ok <<<"$result")" "raw $c: not ok"
    af_assert_eq infra "$(jq -r .failure <<<"$result")" "raw $c: failure infra"
    af_assert_contains "$(jq -r .message <<<"$result")" "$2" "raw $c: the message says what was wrong"
    printf '   %s: %s\n' "$c" "$(jq -r .message <<<"$result")" >&2
    digest=$(sha256sum <"$AF_TMP/raw/$c.tar" | cut -d' ' -f1)
    [[ ! -e $A/work/contexts/$digest.tar ]] || af_fail "raw $c: the bad context entered the store"
}
af_log "raw client: hostile deltas"
expect_refused outside "a copy outside the base context"
expect_refused mismatch "context digest mismatch"
expect_refused truncated "context delta truncated"
expect_refused trailing "bytes after the end"
expect_refused grows "overruns the announced size"
af_wait_until 20 "the raw jobs' dirs to go" af_agent_no_job_dirs node-amd64
"$PY" "$RAW" hello --endpoint "$EP" >/dev/null || af_fail "the agent stopped answering HELLO"
left=$(find "$A/work/contexts" -name '.incoming-*' | head -5)
[[ -z $left ]] || af_fail "temp files left in the store: $left"

echo "PASS: test_context_delta"
