#!/usr/bin/env bash
# run-all.sh -- THE test command (README): on a fresh Debian 12 machine, as
# root, from a clone:
#
#   sudo tests/run-all.sh            # deps, -Werror build, unit + integration tests
#   sudo tests/run-all.sh --sanitize # also the whole suite under ASan+UBSan
#   sudo tests/run-all.sh --fuzz     # also tests/fuzz/run.sh (each fuzz target ~1 min)
#
# CI=true (set by CI, see .ci/run) implies --sanitize and --fuzz. It installs missing
# apt packages (tests/lib/deps.sh), builds build/ with -DAF_WERROR=ON, runs
# `ctest --output-on-failure` (unit and integration), then, when sanitizing,
# builds build-asan/ with -DAF_SANITIZE=ON and runs every test again with
# leak detection on. Ends with one "N passed, N failed" line; exits non-zero
# on any failure.
#
# Before the native suite it cross-builds arm64 and armhf (scripts/cross-build:
# sysroot, binaries, .debs) and runs the unit suite under qemu-user; skip with
# --no-cross (test_foreign_agents then cross-builds what it needs itself).
#
# Options: --sanitize, --no-sanitize, --fuzz, --no-cross, --no-deps (or AF_SKIP_DEPS=1),
#          -R REGEX (only tests matching, passed to ctest), -j N (build jobs, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

sanitize=0
fuzz=0
cross=1
[[ ${CI:-} == true ]] && sanitize=1 && fuzz=1
jobs=2
ctest_filter=()
while (($#)); do
    case $1 in
    --sanitize) sanitize=1 ;;
    --no-sanitize) sanitize=0 ;;
    --fuzz) fuzz=1 ;;
    --no-cross) cross=0 ;;
    --no-deps) export AF_SKIP_DEPS=1 ;;
    -R) ctest_filter=(-R "$2"); shift ;;
    -j) jobs=$2; shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-all.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

passed=0
failed=0
failures=()
start=$SECONDS

section() { printf '\n==== %s\n' "$*"; }

# s_count LABEL LOG RC: adds the counts of the ctest summary in LOG (RC is
# the exit status of what wrote it); no summary counts as one failure.
s_count() {
    local label=$1 log=$2 rc=$3 line total nfail
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
    if [[ -z $line ]]; then
        echo "run-all: ctest ($label) produced no summary (exit $rc)" >&2
        failed=$((failed + 1))
        failures+=("$label: ctest did not run")
        return
    fi
    nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + total - nfail))
    failed=$((failed + nfail))
    if ((nfail > 0)); then
        while read -r t; do failures+=("$label: $t"); done < <(
            sed -n '/The following tests FAILED:/,$p' "$log" | grep -E '^\s+[0-9]+ - ' | sed -E 's/^\s+[0-9]+ - //')
    elif ((rc != 0)); then
        failed=$((failed + 1))
        failures+=("$label: exited $rc")
    fi
}

# s_ctest LABEL BUILD_DIR: runs ctest in BUILD_DIR and adds its counts.
s_ctest() {
    local label=$1 dir=$2 log rc=0
    log="$dir/ctest-summary.log"
    set +e
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" "${ctest_filter[@]}" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    s_count "$label" "$log" "$rc"
}

# s_cross ARCH: scripts/cross-build ARCH --test (sysroot, build, .debs, the
# unit suite under qemu-user) and adds its counts.
s_cross() {
    local arch=$1 log="$ROOT/build-cross/$1-tests.log" rc=0
    mkdir -p "$ROOT/build-cross"
    set +e
    scripts/cross-build "$arch" --test -j "$jobs" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    s_count "qemu-$arch" "$log" "$rc"
}

# s_build LABEL DIR CMAKE-ARGS...: configure + build; a failure counts as one.
s_build() {
    local label=$1 dir=$2
    shift 2
    if cmake -S "$ROOT" -B "$dir" -DAF_WERROR=ON "$@" && cmake --build "$dir" -j "$jobs"; then
        return 0
    fi
    failed=$((failed + 1))
    failures+=("$label: build failed")
    return 1
}

section "dependencies"
# shellcheck source=lib/deps.sh
source tests/lib/deps.sh
af_deps_install

if ((cross)); then
    # before the native suite: test_foreign_agents runs these agents
    for arch in arm64 armhf; do
        section "cross build for $arch + unit suite under qemu-user (scripts/cross-build $arch --test)"
        s_cross "$arch"
    done
fi

section "build (build/, -DAF_WERROR=ON)"
if s_build build "$ROOT/build" -DAF_SANITIZE=OFF; then
    section "tests (unit + integration)"
    s_ctest tests "$ROOT/build"
fi

if ((sanitize)); then
    section "build under ASan+UBSan (build-asan/, -DAF_SANITIZE=ON)"
    if s_build asan "$ROOT/build-asan" -DAF_SANITIZE=ON; then
        section "tests under ASan+UBSan (unit + integration)"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            s_ctest asan "$ROOT/build-asan"
    fi
fi

if ((fuzz)); then
    section "fuzz (tests/fuzz/run.sh: every target ~50 s under ASan+UBSan)"
    if tests/fuzz/run.sh -j "$jobs"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("fuzz: tests/fuzz/run.sh (crash input kept in build-fuzz/artifacts/)")
    fi
fi

section "summary ($((SECONDS - start))s)"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
((failed == 0))
