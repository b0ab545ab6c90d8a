#!/usr/bin/env bash
# test_progress_modes -- what `archfarm build` shows in CI and at a terminal.
#
# Two agents (linux/amd64, linux/arm64) and a real registry.
#   1. GITHUB_ACTIONS=true, a build whose arm64 slice fails: each slice's log
#      sits in ::group::PLATFORM on NODE ... ::endgroup::, the failure raises
#      ::error title=linux/arm64 on node-arm64:: with the reason and the
#      step's last lines, $GITHUB_STEP_SUMMARY gets the table, exit 1.
#      With a second arm64 node and --retry-on-build-failure, the retry
#      raises ::warning and each attempt has its own group.
#   2. GITHUB_ACTIONS=true, a build that succeeds and whose step prints
#      terminal escapes and a forged workflow command: ::add-mask:: comes
#      before anything else, the forged command sits inside ::stop-commands::,
#      the summary has every slice's digest and the index digest and tags,
#      $GITHUB_OUTPUT has digest/imageid/metadata (multiline form) matching
#      the digest on stdout.
#   3. Issue 12 finding 5: `printf "A\033[31mRED\007\rB"` in a build step
#      reaches no terminal raw, in plain, gha and tty modes.
#   4. A pseudo-terminal (tests/integration/pty_run.py): the live display
#      moves the cursor up to redraw, uses colour, and its final screen
#      shows each platform's row with its digest; NO_COLOR=1 gives no SGR;
#      a resize (SIGWINCH) mid-build redraws the panel for the new width;
#      TERM=dumb falls back to plain lines.
#   5. --quiet: stdout is only the index digest, stderr is empty.
set -euo pipefail
source "${AF_SOURCE_DIR:-$(dirname "$0")/../..}/tests/lib/farm.sh"

af_farm_init
af_farm_registry_start
af_agent_start node-amd64 linux/amd64
af_agent_start node-arm64 linux/arm64
af_inventory_write "$AF_TMP/inventory.yaml"
PLATFORMS=linux/amd64,linux/arm64

# a context whose step prints what a hostile or careless build prints
mkdir -p "$AF_TMP/ctx"
cat >"$AF_TMP/ctx/archfarm.yaml" <<'YAML'
build:
  run: |
    printf 'A\033[31mRED\007\rB\n'
    printf 'title\033]0;pwned\007 \302\233 31m done\n'
    echo '::error title=forged::a build step must not raise annotations'
    for i in 1 2 3 4 5; do echo "step $i for $TARGETPLATFORM"; sleep 0.2; done
    mkdir -p out
    echo "built for $TARGETPLATFORM" > out/platform.txt
image:
  from: scratch
  copy:
    - {src: out/platform.txt, dest: /platform.txt}
YAML

# no raw control byte but newline: ESC, BEL, CR, C1 CSI (UTF-8 c2 9b)
s_assert_no_raw_escapes() {
    local file=$1 what=$2
    if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$file" || LC_ALL=C grep -q $'\xc2\x9b' "$file"; then
        LC_ALL=C grep -n $'[\x01-\x08\x0b-\x1f\x7f]\|\xc2\x9b' "$file" | cat -v | head -5 >&2
        af_fail "$what: raw control characters reach the output"
    fi
    printf 'ok: %s: no raw control characters\n' "$what" >&2
}

# --- 1. GitHub Actions, a failing slice ------------------------------------
cp -r "$AF_SOURCE_DIR/tests/integration/fixtures/failing" "$AF_TMP/failing"
: >"$AF_TMP/fail.summary"
: >"$AF_TMP/fail.output"
rc=0
GITHUB_ACTIONS=true GITHUB_STEP_SUMMARY="$AF_TMP/fail.summary" GITHUB_OUTPUT="$AF_TMP/fail.output" \
    af_archfarm build --insecure-registry "$AF_REGISTRY" --platform "$PLATFORMS" --no-fail-fast \
    -t "$AF_REGISTRY/app:fail" --push "$AF_TMP/failing" \
    >"$AF_TMP/fail.stdout" 2>"$AF_TMP/fail.stderr" || rc=$?
cat "$AF_TMP/fail.stderr" >&2
af_assert_eq 1 "$rc" "GITHUB_ACTIONS=true build with a failing slice exits 1"
err=$(cat "$AF_TMP/fail.stderr")
af_assert_eq 1 "$(grep -cx '::group::linux/arm64 on node-arm64' <<<"$err")" "arm64's log is in a group"
af_assert_eq 1 "$(grep -cx '::group::linux/amd64 on node-amd64' <<<"$err")" "amd64's log is in a group"
af_assert_eq "$(grep -c '^::group::' <<<"$err")" "$(grep -c '^::endgroup::$' <<<"$err")" \
    "every ::group:: is closed by ::endgroup::"
# the failing step's own stderr is inside arm64's group
group=$(sed -n '/^::group::linux\/arm64 on node-arm64$/,/^::endgroup::$/p' <<<"$err")
af_assert_contains "$group" "refusing to build for linux/arm64" "arm64's group holds its log"
errline=$(grep '^::error ' <<<"$err" || true)
af_assert_match "$errline" '^::error title=linux/arm64 on node-arm64::FAILED \(build, exit status 3\)' \
    "::error names platform and node in the title, reason in the message"
af_assert_match "$errline" "%0Alast [0-9]+ log lines:%0A.*failing fixture: refusing to build for linux/arm64$" \
    "::error quotes the last log lines, newlines escaped"
af_assert_eq 1 "$(grep -c '^::error ' <<<"$err")" "exactly one ::error (amd64 succeeded)"
summary=$(cat "$AF_TMP/fail.summary")
af_assert_contains "$summary" "| Platform | Node | Result | Seconds | Sent | Pushed | Digest |" "summary table header"
af_assert_match "$summary" '\| linux/arm64 \| node-arm64 \| build\(3\) \| [0-9.]+ \|' "summary row of the failed slice"
af_assert_match "$summary" '\| linux/amd64 \| node-amd64 \| ✅ ok \| [0-9.]+ \| [0-9.]+ [KMG]?i?B \| [0-9.]+ [KMG]?i?B \| sha256:[0-9a-f]{64} \|' \
    "summary row of the slice that built"
af_assert_contains "$summary" "no tag was written" "summary says no tag was written"
af_assert_eq "" "$(cat "$AF_TMP/fail.output")" "no step outputs for a failed build"

# --- 1b. GitHub Actions, a retried attempt: ::warning, then ::error ---------
# a second arm64 node, in a second inventory only (the other runs keep one
# node per platform); the step fails on both arm64 nodes
af_agent_start node-arm64b linux/arm64
af_inventory_write "$AF_TMP/inventory-retry.yaml"
: >"$AF_TMP/retry.summary"
rc=0
GITHUB_ACTIONS=true GITHUB_STEP_SUMMARY="$AF_TMP/retry.summary" GITHUB_OUTPUT="$AF_TMP/retry.output" \
    af_archfarm build --insecure-registry "$AF_REGISTRY" --platform linux/arm64 \
    --retry-on-build-failure --retries 1 -t "$AF_REGISTRY/app:retry" "$AF_TMP/failing" \
    >"$AF_TMP/retry.stdout" 2>"$AF_TMP/retry.stderr" || rc=$?
cat "$AF_TMP/retry.stderr" >&2
af_assert_eq 1 "$rc" "a slice failing on both arm64 nodes exits 1"
err=$(cat "$AF_TMP/retry.stderr")
af_assert_match "$err" '^::warning title=linux/arm64 on node-arm64b?::\[linux/arm64 node-arm64b?\] retrying: attempt 2, after node node-arm64b? failed' \
    "the retried attempt raises ::warning naming the node that failed"
af_assert_eq 1 "$(grep -c '^::warning ' <<<"$err")" "one ::warning (one retry)"
af_assert_eq 1 "$(grep -Ecx '::group::linux/arm64 on node-arm64b?' <<<"$err")" "attempt 1 has its group"
af_assert_eq 1 "$(grep -Ecx '::group::linux/arm64 on node-arm64b? \(attempt 2\)' <<<"$err")" "attempt 2 has its group"
af_assert_eq 1 "$(grep -c '^::error title=linux/arm64 on node-arm64b\{0,1\}::' <<<"$err")" \
    "one ::error, for the attempt that failed for good"
tokens=$(sed -n 's/^::stop-commands::\(.*\)$/\1/p' <<<"$err" | sort -u | wc -l)
af_assert_eq 2 "$tokens" "each group has its own stop-commands token"
AF_INVENTORY=$AF_TMP/inventory.yaml

# --- 2. GitHub Actions, success, secrets, escapes ---------------------------
mkdir -p "$AF_TMP/dockercfg"
SECRET='s3cret,pass:%word'
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$AF_REGISTRY" "$(printf 'ci-user:%s' "$SECRET" | base64 -w0)" \
    >"$AF_TMP/dockercfg/config.json"
: >"$AF_TMP/ok.summary"
: >"$AF_TMP/ok.output"
rc=0
DOCKER_CONFIG="$AF_TMP/dockercfg" GITHUB_ACTIONS=true GITHUB_STEP_SUMMARY="$AF_TMP/ok.summary" \
    GITHUB_OUTPUT="$AF_TMP/ok.output" \
    af_archfarm build --insecure-registry "$AF_REGISTRY" --platform "$PLATFORMS" \
    -t "$AF_REGISTRY/app:gha" -t "$AF_REGISTRY/app:gha2" --push \
    --metadata-file "$AF_TMP/ok.json" "$AF_TMP/ctx" \
    >"$AF_TMP/ok.stdout" 2>"$AF_TMP/ok.stderr" || rc=$?
cat -v "$AF_TMP/ok.stderr" >&2
af_assert_eq 0 "$rc" "GITHUB_ACTIONS=true build exits 0"
digest=$(cat "$AF_TMP/ok.stdout")
af_assert_match "$digest" '^sha256:[0-9a-f]{64}$' "stdout is the index digest"
af_assert_eq "::add-mask::s3cret,pass:%25word" "$(head -n 1 "$AF_TMP/ok.stderr")" \
    "the registry password is masked (escaped) before any other output"
err=$(cat "$AF_TMP/ok.stderr")
s_assert_no_raw_escapes "$AF_TMP/ok.stderr" "gha mode"
af_assert_contains "$err" 'A\x1b[31mRED\x07\x0dB' "gha: escapes shown as \\xNN"
# the forged command sits between ::stop-commands::TOKEN and ::TOKEN::
group=$(sed -n '/^::group::linux\/amd64 on node-amd64$/,/^::endgroup::$/p' <<<"$err")
token=$(sed -n 's/^::stop-commands::\(.*\)$/\1/p' <<<"$group")
af_assert_match "$token" '^archfarm-[0-9a-f]{24}$' "build output is wrapped in ::stop-commands:: with a random token"
inner=$(sed -n "/^::stop-commands::$token\$/,/^::$token::\$/p" <<<"$group")
af_assert_contains "$inner" "::error title=forged::" "the step's forged command is inside stop-commands"
af_assert_eq 0 "$(grep -c '^::error ' <<<"$(grep -v forged <<<"$err")" || true)" "no ::error of our own on success"
summary=$(cat "$AF_TMP/ok.summary")
for p in linux/amd64 linux/arm64; do
    d=$(jq -r --arg p "$p" '.slices[] | select(.platform == $p) | .digest' "$AF_TMP/ok.json")
    af_assert_match "$d" '^sha256:' "metadata has $p's digest"
    af_assert_contains "$summary" "| $p | node-${p#linux/} | ✅ ok |" "summary row of $p"
    af_assert_contains "$summary" "| $d |" "summary shows $p's digest"
done
af_assert_contains "$summary" "**Index** \`$digest\` (pushed)" "summary shows the index digest"
af_assert_contains "$summary" "- $AF_REGISTRY/app:gha2" "summary lists the tags"
out=$(cat "$AF_TMP/ok.output")
af_assert_eq 1 "$(grep -cx "digest=$digest" <<<"$out")" "GITHUB_OUTPUT digest= is the index digest"
af_assert_eq 1 "$(grep -cx "imageid=$digest" <<<"$out")" "GITHUB_OUTPUT imageid="
delim=$(sed -n 's/^metadata<<\(.*\)$/\1/p' <<<"$out")
af_assert_match "$delim" '^ghadelimiter_[0-9a-f]{32}$' "metadata uses the multiline form with a random delimiter"
meta=$(sed -n "/^metadata<<$delim\$/,/^$delim\$/p" <<<"$out" | sed '1d;$d')
af_assert_eq "$digest" "$(jq -r '."containerimage.digest"' <<<"$meta")" "metadata output: containerimage.digest"
af_assert_eq "$AF_REGISTRY/app:gha,$AF_REGISTRY/app:gha2" "$(jq -r '."image.name"' <<<"$meta")" \
    "metadata output: image.name"

# --- 3. plain mode: the same step, escapes neutralised -----------------------
rc=0
# --no-cache here and below: the same context again, and the test watches its build
af_build "$AF_TMP/plain.out" --platform "$PLATFORMS" --no-cache -t "$AF_REGISTRY/app:plain" "$AF_TMP/ctx" || rc=$?
af_assert_eq 0 "$rc" "plain build exits 0"
s_assert_no_raw_escapes "$AF_TMP/plain.out" "plain mode"
af_assert_contains "$(cat "$AF_TMP/plain.out")" '[linux/amd64 node-amd64] A\x1b[31mRED\x07\x0dB' \
    "plain: the line is shown with visible escapes"
af_assert_contains "$(cat "$AF_TMP/plain.out")" 'title\x1b]0;pwned\x07 \xc2\x9b 31m done' \
    "plain: OSC and C1 CSI shown with visible escapes"

# --- 4. a pseudo-terminal ----------------------------------------------------
s_pty_build() { # NAME ENV...
    local name=$1
    shift
    local rc=0
    env "$@" COLUMNS= python3 "$AF_SOURCE_DIR/tests/integration/pty_run.py" \
        "$AF_TMP/$name.raw" "$AF_TMP/$name.screen" 120 40 -- \
        timeout -k 10 "$AF_TIMEOUT" "$AF_BIN/archfarm" -i "$AF_INVENTORY" build \
        --insecure-registry "$AF_REGISTRY" --platform "$PLATFORMS" \
        --no-cache -t "$AF_REGISTRY/app:$name" --metadata-file "$AF_TMP/$name.json" "$AF_TMP/ctx" || rc=$?
    cat "$AF_TMP/$name.screen" >&2
    af_assert_eq 0 "$rc" "$name: build on a pseudo-terminal exits 0"
}
s_pty_build tty TERM=xterm-256color NO_COLOR=
raw=$(LC_ALL=C cat -v "$AF_TMP/tty.raw")
af_assert_match "$raw" '\^\[\[[0-9]+A' "tty: the display moves the cursor up to redraw"
ups=$(LC_ALL=C grep -o $'\x1b\[[0-9]*A' "$AF_TMP/tty.raw" | wc -l)
af_assert_match "$ups" '^([3-9]|[1-9][0-9]+)$' "tty: redrawn in place several times ($ups cursor-ups)"
af_assert_match "$raw" '\^\[\[3[0-9](;1)?m' "tty: colour without NO_COLOR"
af_assert_eq 0 "$(LC_ALL=C grep -c $'\x07\|\x1b\]' "$AF_TMP/tty.raw" || true)" \
    "tty: the step's BEL and OSC never reach the terminal"
screen=$(cat "$AF_TMP/tty.screen")
af_assert_contains "$screen" 'A\x1b[31mRED\x07\x0dB' "tty: the step's escapes scroll as visible text"
for p in linux/amd64 linux/arm64; do
    d=$(jq -r --arg p "$p" '.slices[] | select(.platform == $p) | .digest' "$AF_TMP/tty.json")
    # the final panel: "OK   PLATFORM NODE  N.Ns  verified", the digest under it
    row=$(grep -A1 -E "^OK +$p +node-${p#linux/} +[0-9.]+s +verified\$" "$AF_TMP/tty.screen" || true)
    af_assert_match "$(sed -n 2p <<<"$row")" "^ +$d\$" "tty: the final screen shows $p verified with its digest"
done
# the panel is not repeated: each platform's final row appears once
af_assert_eq 1 "$(grep -c "^OK   linux/amd64" "$AF_TMP/tty.screen")" "tty: one final row per platform"
af_assert_eq "$(jq -r '."containerimage.digest"' "$AF_TMP/tty.json")" "$(tail -n 1 "$AF_TMP/tty.screen")" \
    "tty: the index digest is the last line"

# NO_COLOR, and the terminal shrinks to 60 columns (SIGWINCH) mid-build
s_pty_build nocolor TERM=xterm-256color NO_COLOR=1 PTY_RESIZE=60
af_assert_match "$(LC_ALL=C cat -v "$AF_TMP/nocolor.raw")" '\^\[\[[0-9]+A' "NO_COLOR: still redraws in place"
af_assert_eq 0 "$(LC_ALL=C grep -c $'\x1b\[[0-9;]*m' "$AF_TMP/nocolor.raw" || true)" "NO_COLOR: no SGR colour sequence"
[[ -s "$AF_TMP/nocolor.raw.resize" ]] || af_fail "the terminal was not resized while the panel was live"
# the final panel was drawn for 60 columns: its digest lines are cut at 59
d=$(jq -r '.slices[] | select(.platform == "linux/arm64") | .digest' "$AF_TMP/nocolor.json")
row=$(grep -A1 -E "^OK +linux/arm64 +node-arm64 +[0-9.]+s +verified\$" "$AF_TMP/nocolor.screen" || true)
af_assert_eq "     ${d:0:54}" "$(sed -n 2p <<<"$row")" "SIGWINCH: the panel is redrawn for the new width (59 columns)"

s_pty_build dumb TERM=dumb NO_COLOR=
af_assert_eq 0 "$(LC_ALL=C grep -c $'\x1b' "$AF_TMP/dumb.raw" || true)" "TERM=dumb: no escape sequence at all (plain)"
af_assert_contains "$(cat "$AF_TMP/dumb.screen")" "[linux/arm64 node-arm64] step 5 for linux/arm64" \
    "TERM=dumb: plain prefixed lines"

# --- 5. --quiet ----------------------------------------------------------------
rc=0
af_archfarm build -q --insecure-registry "$AF_REGISTRY" --platform "$PLATFORMS" \
    --no-cache -t "$AF_REGISTRY/app:quiet" "$AF_TMP/ctx" >"$AF_TMP/q.stdout" 2>"$AF_TMP/q.stderr" || rc=$?
af_assert_eq 0 "$rc" "--quiet build exits 0"
af_assert_match "$(cat "$AF_TMP/q.stdout")" '^sha256:[0-9a-f]{64}$' "--quiet: stdout is only the index digest"
# warnings (this farm's plaintext transport) may remain; no progress
af_assert_eq 0 "$(grep -Evc '^archfarm: (warning|error): ' "$AF_TMP/q.stderr" || true)" \
    "--quiet: no progress on stderr, only warnings and errors"
rc=0
af_archfarm build --quiet --insecure-registry "$AF_REGISTRY" --platform "$PLATFORMS" --no-fail-fast \
    -t "$AF_REGISTRY/app:quiet" "$AF_TMP/failing" >"$AF_TMP/qf.stdout" 2>"$AF_TMP/qf.stderr" || rc=$?
af_assert_eq 1 "$rc" "--quiet failing build exits 1"
af_assert_eq "" "$(cat "$AF_TMP/qf.stdout")" "--quiet failure: nothing on stdout"
af_assert_match "$(cat "$AF_TMP/qf.stderr")" '^archfarm: error: linux/arm64 on node node-arm64 failed' \
    "--quiet failure: the error on stderr"
af_assert_eq 0 "$(grep -Evc '^archfarm: (warning|error): ' "$AF_TMP/qf.stderr" || true)" \
    "--quiet failure: only warnings and errors on stderr"

echo "PASS: test_progress_modes"
