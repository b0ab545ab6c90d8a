#!/usr/bin/env bash
# run.sh -- the CI fuzz run: every libFuzzer target in tests/fuzz/ for a
# bounded time under ASan+UBSan, from its seed corpus.
#
#   tests/fuzz/run.sh [--time S] [--only NAME] [-j N]
#
# Builds build-fuzz/ with clang (-DAF_FUZZ=ON -DAF_SANITIZE=ON, the library
# instrumented for coverage too), then runs each tests/fuzz/fuzz_NAME on a
# temp copy of tests/fuzz/corpus/NAME/ (the seeds in git never change) for
# S seconds (default 50, or $AF_FUZZ_TIME). Prints one line per target with
# executions, execs/s and coverage (libFuzzer's final "cov:" and "ft:"), and
# a summary table. A crash, leak, timeout or sanitizer report fails the run:
# the input is kept as build-fuzz/artifacts/NAME/crash-* (add it to the
# corpus once fixed, as a regression seed) and the report is shown.
# Exit 0 when every target ran clean, 1 otherwise, 2 on usage/build errors.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
secs=${AF_FUZZ_TIME:-50}
only=
jobs=2
while (($#)); do
    case $1 in
    --time) secs=$2; shift ;;
    --only) only=$2; shift ;;
    -j) jobs=$2; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
command -v clang >/dev/null || { echo "fuzz/run.sh: clang not found (apt-get install clang)" >&2; exit 2; }

B=$ROOT/build-fuzz
targets=()
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    name=${name#fuzz_}
    [[ -z $only || $only == "$name" ]] && targets+=("$name")
done
((${#targets[@]})) || { echo "fuzz/run.sh: no fuzz target${only:+ named $only}" >&2; exit 2; }

echo "== building ${targets[*]} in build-fuzz/ (clang, libFuzzer, ASan+UBSan)"
mkdir -p "$B"
# -fsanitize=fuzzer-no-link instruments libarchfarm too, so coverage
# counts the parsers and not only the harness.
if ! { CC=clang cmake -S "$ROOT" -B "$B" -DAF_FUZZ=ON -DAF_SANITIZE=ON -DAF_TESTS=OFF \
    -DAF_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >"$B/fuzz-cmake.log" 2>&1 &&
    cmake --build "$B" -j "$jobs" --target "${targets[@]/#/fuzz_}" >"$B/fuzz-build.log" 2>&1; }; then
    tail -n 40 "$B/fuzz-cmake.log" "$B/fuzz-build.log" 2>/dev/null >&2
    echo "fuzz/run.sh: build failed" >&2
    exit 2
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
work=$(mktemp -d "${TMPDIR:-/tmp}/archfarm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0
rows=()
for t in "${targets[@]}"; do
    bin=$B/bin/fuzz_$t
    [[ -x $bin ]] || bin=$B/fuzz_$t
    corpus=$work/corpus-$t
    mkdir -p "$corpus" "$B/artifacts/$t"
    cp -r "tests/fuzz/corpus/$t/." "$corpus/" 2>/dev/null || true
    seeds=$(find "$corpus" -type f | wc -l)
    log=$B/artifacts/$t/fuzz.log
    rc=0
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$t/" "$corpus" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -Eo 'ft: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    corp=$(find "$corpus" -type f | wc -l)
    status=ok
    if ((rc != 0)); then
        status="FAILED (exit $rc)"
        failed=1
    fi
    printf '%-10s %-16s %10s execs %8s/s  cov %6s  ft %7s  corpus %d->%d  %ss\n' \
        "$t" "$status" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$seeds" "$corp" "$secs"
    rows+=("| $t | ${execs:-?} | ${eps:-?} | ${cov:-?} | ${ft:-?} | $seeds -> $corp | $status |")
    if ((rc != 0)); then
        echo "---- fuzz_$t report (last 60 lines of $log)" >&2
        tail -n 60 "$log" >&2
        find "$B/artifacts/$t" -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
            -o -name 'oom-*' | sed 's/^/input kept: /' >&2
    fi
done

echo
echo "| target | executions | execs/s | cov (edges) | ft (features) | corpus | result |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if ((failed)); then
    echo "fuzz/run.sh: a target failed (see above)" >&2
    exit 1
fi
echo "fuzz/run.sh: ${#targets[@]} target(s), ${secs}s each, clean"
