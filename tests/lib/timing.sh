# timing.sh -- time bounds that hold on a loaded machine (sourced by farm.sh).
#
# A test that asserts a duration derives its bound from the setting under
# test plus a slack multiplied by ONE factor, AF_TEST_TIME_SCALE, and
# measures on a monotonic clock (never $SECONDS or `date`, which jump with
# NTP and have 1 s resolution).
#
#   t0=$(af_now); ...; took=$(af_elapsed "$t0")
#   bound=$(af_time_bound 3 2)     # 3 s of setting + 2 s slack x scale
#   af_le "$took" "$bound" || af_fail "took $took s (bound $bound s)"
#
# AF_TEST_TIME_SCALE  slack multiplier (default 3: sized for a 2-core
#                     machine running other builds and test suites beside
#                     this one; 1 on an idle machine, more under valgrind)

: "${AF_TEST_TIME_SCALE:=3}"

# af_now: seconds on a monotonic clock (CLOCK_BOOTTIME through /proc/uptime,
# 10 ms resolution), no fork. Only differences between two values mean
# anything.
af_now() {
    local up _
    read -r up _ </proc/uptime
    echo "$up"
}

# af_elapsed FROM [TO]: seconds between two af_now values, 3 decimals.
af_elapsed() {
    awk -v a="$1" -v b="${2:-$(af_now)}" 'BEGIN { printf "%.3f", b - a }'
}

# af_le A B: true when A <= B (decimals).
af_le() {
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'
}

# af_time_scale SECONDS: SECONDS x AF_TEST_TIME_SCALE, 3 decimals.
af_time_scale() {
    awk -v s="$1" -v k="$AF_TEST_TIME_SCALE" 'BEGIN { printf "%.3f", s * k }'
}

# af_time_bound SETTING_S SLACK_S: the bound for something the settings say
# takes SETTING_S: SETTING_S + SLACK_S x AF_TEST_TIME_SCALE, 3 decimals.
af_time_bound() {
    awk -v s="$1" -v l="$2" -v k="$AF_TEST_TIME_SCALE" 'BEGIN { printf "%.3f", s + l * k }'
}
