#!/usr/bin/env bash
# test_security_hostile -- an agent survives hostile peers.
#
# Through tests/integration/raw_client.py (the wire protocol spoken directly,
# Debian's python3-zmq + python3-msgpack), against an --insecure agent:
#   1. crafted context tars, each sent with its real digest and size and in
#      CHUNKs as CREDIT allows: "../" out of the job dir, an absolute path, a
#      symlink to /etc and then a file through it, a relative symlink out of
#      the job dir and a file through it, a hardlink to /etc/passwd, a
#      character device, a FIFO. Each gets RESULT failure "infra" naming the
#      rejected entry, and nothing exists at any path the tar aimed at;
#   2. 10,000 random, truncated, mistyped, deeply nested and oversized
#      multipart messages (bounded time). The agent stays up, answers HELLO,
#      its RSS grows by less than a bound, and a real build through the real
#      coordinator still succeeds;
#   3. a recipe whose copy.src is a symlink (made by the build step) to
#      /etc/passwd fails, naming the entry, and publishes nothing. Under ASan (CI) the agent's exit is
#      checked for sanitizer and leak reports when it is stopped.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_raw_client_init
af_farm_init
af_farm_registry_start
# under ASan (CI), a small quarantine so the memory bound below means something
ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=16" af_agent_start hostile linux/amd64
af_inventory_write "$AF_TMP/inventory.yaml"
A=${AF_AGENT_DIR[hostile]}
EP=tcp://127.0.0.1:${AF_AGENT_PORT[hostile]}
PID=${AF_AGENT_PID[hostile]}
af_assert_contains "$(cat "$A/stderr.log")" "INSECURE" "--insecure logs a loud warning"

# --- 1. crafted context tars ------------------------------------------------------
OUT=$AF_TMP/outside # every escape aims here (or at /etc): none may appear
mkdir -p "$OUT" "$AF_TMP/tars"
TAG=af-escape-$$-$RANDOM
"$PY" - "$AF_TMP/tars" "$OUT" "$TAG" <<'EOF'
import io, sys, tarfile
tars, out, tag = sys.argv[1:4]
recipe = ("build:\n  run: touch %s/ran\nimage:\n  from: scratch\n" % out).encode()

def f(t, name, data=b"escaped\n"):
    ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))

def link(t, name, target, kind=tarfile.SYMTYPE):
    ti = tarfile.TarInfo(name); ti.type = kind; ti.linkname = target; t.addfile(ti)

def special(t, name, kind):
    ti = tarfile.TarInfo(name); ti.type = kind; ti.devmajor, ti.devminor = 1, 3; t.addfile(ti)

depth = "../" * 40
cases = {
    "dotdot": lambda t: f(t, depth + out.lstrip("/") + "/dotdot"),
    "absolute": lambda t: f(t, out + "/absolute"),
    "symlink-etc": lambda t: (link(t, "etc", "/etc"), f(t, "etc/" + tag)),
    "symlink-up": lambda t: (link(t, "up", depth + out.lstrip("/")), f(t, "up/through-symlink")),
    "hardlink": lambda t: link(t, "passwd", "/etc/passwd", tarfile.LNKTYPE),
    "device": lambda t: special(t, "null", tarfile.CHRTYPE),
    "fifo": lambda t: special(t, "pipe", tarfile.FIFOTYPE),
}
for name, add in cases.items():
    with tarfile.open("%s/%s.tar" % (tars, name), "w", format=tarfile.GNU_FORMAT) as t:
        f(t, "archfarm.yaml", recipe)
        add(t)
EOF

s_expect_rejected() { # CASE ENTRY-NAME-FRAGMENT
    local c=$1 want=$2 rc=0 result
    timeout -k 5 60 "$PY" "$RAW" build --endpoint "$EP" --tar "$AF_TMP/tars/$c.tar" \
        --job "raw-$c" --repository "$AF_REGISTRY/hostile" --timeout 30 >"$AF_TMP/$c.out" 2>&1 || rc=$?
    af_assert_eq 0 "$rc" "$c: the agent answered with a RESULT"
    result=$(tail -n 1 "$AF_TMP/$c.out")
    af_assert_eq false "$(jq -r .ok <<<"$result")" "$c: not ok"
    af_assert_eq infra "$(jq -r .failure <<<"$result")" "$c: failure infra"
    af_assert_contains "$(jq -r .message <<<"$result")" "$want" "$c: the message names the rejected entry"
}
s_expect_rejected dotdot "outside/dotdot\": path escapes"
s_expect_rejected absolute "entry \"$OUT/absolute\": absolute"
s_expect_rejected symlink-etc "entry \"etc\": symlink target \"/etc\""
s_expect_rejected symlink-up "entry \"up\": symlink target"
s_expect_rejected hardlink "entry \"passwd\": absolute hardlink target"
s_expect_rejected device "entry \"null\": character devices"
s_expect_rejected fifo "entry \"pipe\": FIFOs"
left=$(find "$OUT" -mindepth 1)
[[ -z $left ]] || af_fail "entries escaped into $OUT: $left"
[[ ! -e /etc/$TAG ]] || { rm -f "/etc/$TAG"; af_fail "a file was written through the symlink into /etc"; }
printf 'ok: nothing landed outside the job dir (%s, /etc) and no build step ran\n' "$OUT" >&2
af_wait_until 20 "the rejected jobs' dirs to go" af_agent_no_job_dirs hostile

# --- 2. 10,000 hostile messages --------------------------------------------------------
s_rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
# warm up the allocator with one round so the bound measures growth, not first use
"$PY" "$RAW" garbage --endpoint "$EP" --count 500 --seed 1 --oversized 0 >/dev/null
rss0=$(s_rss_kib)
rc=0
timeout -k 5 240 "$PY" "$RAW" garbage --endpoint "$EP" --count 10000 --seed 20261130 \
    --deadline 180 >"$AF_TMP/garbage.json" 2>&1 || rc=$?
cat "$AF_TMP/garbage.json" >&2
af_assert_eq 0 "$rc" "the agent answers HELLO after 10,000 hostile messages"
af_assert_eq 10000 "$(jq -r .sent "$AF_TMP/garbage.json")" "all 10,000 messages were sent"
kill -0 "$PID" 2>/dev/null || af_fail "the agent died"
rss1=$(s_rss_kib)
# ASan keeps freed memory in its quarantine (16 MiB here) plus shadow: a wider bound
limit_kib=$((48 * 1024))
if [[ $(ldd "$AF_BIN/archfarm-agent" 2>/dev/null) == *libasan* ]]; then limit_kib=$((64 * 1024)); fi
growth=$((rss1 - rss0))
af_log "agent VmRSS ${rss0} KiB -> ${rss1} KiB (growth ${growth} KiB, bound ${limit_kib} KiB)"
((growth < limit_kib)) || af_fail "agent memory grew by ${growth} KiB (bound ${limit_kib} KiB)"
printf 'ok: agent memory bounded (VmRSS %s -> %s KiB)\n' "$rss0" "$rss1" >&2
lines=$(wc -l <"$A/stderr.log")
((lines < 5000)) || af_fail "10,000 bad messages produced $lines log lines (log flooding)"
printf 'ok: %s agent log lines in all\n' "$lines" >&2

# --- a real build afterwards --------------------------------------------------------------
mkdir -p "$AF_TMP/ctx"
cat >"$AF_TMP/ctx/archfarm.yaml" <<'EOF'
build:
  run: mkdir -p out && echo "built for $TARGETPLATFORM" > out/hello.txt
image:
  from: scratch
  copy:
    - {src: out/hello.txt, dest: /hello.txt}
EOF
rc=0
af_build "$AF_TMP/build.out" --platform linux/amd64 -t "$AF_REGISTRY/hostile/app:after" --push \
    "$AF_TMP/ctx" || rc=$?
cat "$AF_TMP/build.out" >&2
af_assert_eq 0 "$rc" "a real build through the coordinator succeeds afterwards"
af_tag_digest hostile/app:after >/dev/null || af_fail "hostile/app:after is not in the registry"
af_assert_eq "$PID" "${AF_AGENT_PID[hostile]}" "the same agent process served it"

# --- 3. copy.src cannot leave the context, even through a symlink the step made ---
mkdir -p "$AF_TMP/ctx-escape"
cat >"$AF_TMP/ctx-escape/archfarm.yaml" <<'EOF'
build:
  run: mkdir -p out && ln -s /etc/passwd out/pw
image:
  from: scratch
  copy:
    - {src: out/pw, dest: /pw}
EOF
rc=0
af_build "$AF_TMP/escape.out" --platform linux/amd64 -t "$AF_REGISTRY/hostile/app:escape" --push \
    "$AF_TMP/ctx-escape" || rc=$?
cat "$AF_TMP/escape.out" >&2
af_assert_ne 0 "$rc" "a copy.src symlinked out of the context fails the build"
af_assert_match "$(cat "$AF_TMP/escape.out")" 'out/pw.*outside|outside.*out/pw' "the failure names the entry"
af_tag_digest hostile/app:escape >/dev/null && af_fail "hostile/app:escape was published"
printf 'ok: nothing was published for the escaping copy.src\n' >&2
af_wait_until 20 "the job dir to go" af_agent_no_job_dirs hostile
af_agent_stop hostile || af_fail "the agent did not exit cleanly (crash, sanitizer or leak report)"
printf 'ok: the agent stopped cleanly (no sanitizer or leak report)\n' >&2

echo "PASS: test_security_hostile"
