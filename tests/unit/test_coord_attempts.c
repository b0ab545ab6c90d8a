/* test_coord_attempts.c -- a slice's attempts (coordinator/attempts.c,
 * compiled in here with schedule.c: the CLI is not a library): which
 * attempt a message is about, stale RESULTs of abandoned attempts, the
 * retry policy (--retries, --retry-on-build-failure) and the node of the
 * next attempt. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../coordinator/attempts.c"
#include "../../coordinator/schedule.c"

static char *s_native[] = {"native"};
static char *s_arm64_str[] = {"linux/arm64"};
static af_platform_t s_arm64;

static int s_setup(void **state)
{
    (void)state;
    return af_platform_parse("linux/arm64", &s_arm64, NULL);
}

static af_candidate_t s_cand(const char *name, unsigned running, int priority)
{
    af_candidate_t c = {0};
    c.name = name;
    c.ready = true;
    c.platforms = &s_arm64;
    c.n_platforms = 1;
    c.announced = s_arm64_str;
    c.n_announced = 1;
    c.executors = s_native;
    c.n_executors = 1;
    c.running = running;
    c.max_jobs = 1;
    c.priority = priority;
    return c;
}

static void s_slice(af_slice_t *s, const char *job)
{
    memset(s, 0, sizeof *s);
    s->platform = s_arm64;
    snprintf(s->platform_str, sizeof s->platform_str, "linux/arm64");
    snprintf(s->job, sizeof s->job, "%s", job);
}

static af_attempt_t *s_add(af_slice_t *s, size_t node)
{
    af_attempt_t *a = &s->attempts[s->n_attempts++];
    memset(a, 0, sizeof *a);
    a->node = node;
    a->attempt = (uint32_t)s->n_attempts;
    return a;
}

static void s_end(af_attempt_t *a, bool ok, const char *failure)
{
    a->done = true;
    a->ok = ok;
    snprintf(a->failure, sizeof a->failure, "%s", failure);
}

static void attempts_find_matches_job_node_and_attempt(void **state)
{
    af_slice_t sl[2];
    s_slice(&sl[0], "b1-0");
    s_slice(&sl[1], "b1-1");
    af_attempt_t *a1 = s_add(&sl[0], 0);
    s_end(a1, false, "infra");
    af_attempt_t *a2 = s_add(&sl[0], 1);
    af_attempt_t *b1 = s_add(&sl[1], 2);
    af_slice_t *s = NULL;

    assert_ptr_equal(af_slices_find(sl, 2, 0, "b1-0", 1, &s), a1);
    assert_ptr_equal(s, &sl[0]);
    assert_ptr_equal(af_slices_find(sl, 2, 1, "b1-0", 2, &s), a2);
    assert_ptr_equal(af_slices_find(sl, 2, 2, "b1-1", 1, &s), b1);
    assert_ptr_equal(s, &sl[1]);
    /* attempt 0: the latest one on that node */
    assert_ptr_equal(af_slices_find(sl, 2, 1, "b1-0", 0, NULL), a2);
}

static void attempts_find_rejects_wrong_node_attempt_or_job(void **state)
{
    af_slice_t sl[1];
    s_slice(&sl[0], "b1-0");
    s_add(&sl[0], 0);
    af_slice_t *s = &sl[0];
    /* the right job and attempt number from a node that never ran it */
    assert_null(af_slices_find(sl, 1, 5, "b1-0", 1, &s));
    assert_null(s);
    assert_null(af_slices_find(sl, 1, 0, "b1-0", 2, NULL));
    assert_null(af_slices_find(sl, 1, 0, "b9-0", 1, NULL));
    assert_null(af_slices_find(sl, 1, 0, "", 0, NULL));
}

static void attempts_late_result_of_abandoned_attempt_is_ignored(void **state)
{
    af_slice_t sl[1];
    s_slice(&sl[0], "b1-0");
    af_attempt_t *a1 = s_add(&sl[0], 0);
    /* node 0 was lost: attempt 1 failed here, attempt 2 runs on node 1 */
    s_end(a1, false, "infra");
    af_attempt_t *a2 = s_add(&sl[0], 1);
    /* node 0 comes back and reports attempt 1 a success: too late */
    af_slice_t *s = NULL;
    af_attempt_t *found = af_slices_find(sl, 1, 0, "b1-0", 1, &s);
    assert_ptr_equal(found, a1);
    assert_false(af_attempt_takes_result(s, found));
    /* the current attempt's RESULT counts, once */
    assert_true(af_attempt_takes_result(s, a2));
    s_end(a2, true, "");
    assert_false(af_attempt_takes_result(s, a2));
}

static void attempts_result_for_older_attempt_not_yet_done_is_ignored(void **state)
{
    af_slice_t sl[1];
    s_slice(&sl[0], "b1-0");
    af_attempt_t *a1 = s_add(&sl[0], 0);
    s_add(&sl[0], 1);
    /* not done but not current either (cannot happen in the loop; still
     * never applied) */
    assert_false(af_attempt_takes_result(&sl[0], a1));
    assert_false(af_attempt_takes_result(NULL, a1));
    assert_false(af_attempt_takes_result(&sl[0], NULL));
}

static void attempts_infra_failure_is_retried_up_to_retries(void **state)
{
    af_retry_policy_t p = {.max_attempts = 3}; /* --retries 2 */
    af_slice_t s;
    s_slice(&s, "b1-0");
    s_end(s_add(&s, 0), false, "infra");
    assert_true(af_slice_should_retry(&s, &p));
    s_end(s_add(&s, 1), false, "infra");
    assert_true(af_slice_should_retry(&s, &p));
    s_end(s_add(&s, 2), false, "infra");
    assert_false(af_slice_should_retry(&s, &p)); /* 3 attempts: done */
}

static void attempts_retries_zero_means_one_attempt(void **state)
{
    af_retry_policy_t p = {.max_attempts = 1};
    af_slice_t s;
    s_slice(&s, "b1-0");
    s_end(s_add(&s, 0), false, "infra");
    assert_false(af_slice_should_retry(&s, &p));
}

static void attempts_build_failure_retried_only_when_asked(void **state)
{
    af_retry_policy_t p = {.max_attempts = 3};
    af_slice_t s;
    s_slice(&s, "b1-0");
    s_end(s_add(&s, 0), false, "build");
    assert_false(af_slice_should_retry(&s, &p));
    p.retry_on_build_failure = true;
    assert_true(af_slice_should_retry(&s, &p));
}

static void attempts_cancelled_timeout_ok_and_running_never_retried(void **state)
{
    af_retry_policy_t p = {.max_attempts = 3, .retry_on_build_failure = true};
    af_slice_t s;
    s_slice(&s, "b1-0");
    assert_false(af_slice_should_retry(&s, &p)); /* no attempt at all */
    af_attempt_t *a = s_add(&s, 0);
    assert_false(af_slice_should_retry(&s, &p)); /* still running */
    s_end(a, false, "cancelled");
    assert_false(af_slice_should_retry(&s, &p));
    s_end(a, false, "timeout");
    assert_false(af_slice_should_retry(&s, &p));
    s_end(a, false, "verify");
    assert_false(af_slice_should_retry(&s, &p));
    s_end(a, true, "");
    assert_false(af_slice_should_retry(&s, &p));
}

static void attempts_max_attempts_is_capped(void **state)
{
    af_retry_policy_t p = {.max_attempts = 1000};
    af_slice_t s;
    s_slice(&s, "b1-0");
    for (size_t i = 0; i < AF_MAX_ATTEMPTS; i++)
        s_end(s_add(&s, i), false, "infra");
    assert_false(af_slice_should_retry(&s, &p));
}

static void attempts_next_node_is_least_loaded_untried(void **state)
{
    af_candidate_t c[3] = {s_cand("arm-a", 0, 0), s_cand("arm-b", 1, 0), s_cand("arm-c", 0, 5)};
    af_slice_t s;
    s_slice(&s, "b1-0");
    s_end(s_add(&s, 0), false, "infra");
    /* arm-a was tried; arm-c (idle, priority 5) beats arm-b (busy) */
    assert_int_equal(af_slice_next_node(&s, c, 3, NULL, "native"), 2);
    /* the candidates themselves are not changed */
    assert_true(c[0].ready);
    assert_int_equal(c[2].assigned, 0);
}

static void attempts_next_node_skips_lost_and_tried(void **state)
{
    af_candidate_t c[3] = {s_cand("arm-a", 0, 0), s_cand("arm-b", 0, 0), s_cand("arm-c", 0, 0)};
    bool lost[3] = {false, true, false};
    af_slice_t s;
    s_slice(&s, "b1-0");
    s_end(s_add(&s, 0), false, "infra");
    assert_int_equal(af_slice_next_node(&s, c, 3, lost, "native"), 2);
    s_end(s_add(&s, 2), false, "infra");
    /* infra: never a node already tried, never a lost one */
    assert_int_equal(af_slice_next_node(&s, c, 3, lost, "native"), -1);
}

static void attempts_build_retry_falls_back_to_a_tried_live_node(void **state)
{
    af_candidate_t c[2] = {s_cand("arm-a", 0, 0), s_cand("arm-b", 0, 0)};
    bool lost[2] = {false, true};
    af_slice_t s;
    s_slice(&s, "b1-0");
    s_end(s_add(&s, 0), false, "build");
    assert_int_equal(af_slice_next_node(&s, c, 2, lost, "native"), 0);
    lost[0] = true;
    assert_int_equal(af_slice_next_node(&s, c, 2, lost, "native"), -1);
}

static void attempts_next_node_needs_platform_and_executor(void **state)
{
    af_candidate_t c[1] = {s_cand("arm-a", 0, 0)};
    af_slice_t s;
    s_slice(&s, "b1-0");
    s_end(s_add(&s, 5), false, "infra"); /* tried elsewhere */
    assert_int_equal(af_slice_next_node(&s, c, 1, NULL, "native"), 0);
    assert_int_equal(af_slice_next_node(&s, c, 1, NULL, "dockerfile"), -1);
    assert_int_equal(af_platform_parse("linux/amd64", &s.platform, NULL), 0);
    assert_int_equal(af_slice_next_node(&s, c, 1, NULL, "native"), -1);
    assert_int_equal(af_slice_next_node(&s, c, 0, NULL, "native"), -1);
}

static void schedule_node_selector_matches_labels(void **state)
{
    af_label_t labels[] = {{"zone", "lab"}, {"disk", "ssd"}, {"gpu", NULL}};
    af_kv_t sel[] = {{"zone", "lab"}, {"disk", "ssd"}};
    const af_kv_t *miss = NULL;
    assert_true(af_schedule_labels_match(labels, 3, sel, 2, &miss));
    assert_true(af_schedule_labels_match(labels, 3, NULL, 0, &miss));
    af_kv_t any[] = {{"gpu", ""}};
    assert_true(af_schedule_labels_match(labels, 3, any, 1, &miss));
    af_kv_t wrong[] = {{"zone", "lab"}, {"disk", "hdd"}};
    assert_false(af_schedule_labels_match(labels, 3, wrong, 2, &miss));
    assert_ptr_equal(miss, &wrong[1]);
    af_kv_t absent[] = {{"rack", ""}};
    assert_false(af_schedule_labels_match(labels, 3, absent, 1, NULL));
    assert_false(af_schedule_labels_match(NULL, 0, sel, 1, NULL));
    af_kv_t valued[] = {{"gpu", "yes"}}; /* label without a value */
    assert_false(af_schedule_labels_match(labels, 3, valued, 1, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attempts_find_matches_job_node_and_attempt),
        cmocka_unit_test(attempts_find_rejects_wrong_node_attempt_or_job),
        cmocka_unit_test(attempts_late_result_of_abandoned_attempt_is_ignored),
        cmocka_unit_test(attempts_result_for_older_attempt_not_yet_done_is_ignored),
        cmocka_unit_test(attempts_infra_failure_is_retried_up_to_retries),
        cmocka_unit_test(attempts_retries_zero_means_one_attempt),
        cmocka_unit_test(attempts_build_failure_retried_only_when_asked),
        cmocka_unit_test(attempts_cancelled_timeout_ok_and_running_never_retried),
        cmocka_unit_test(attempts_max_attempts_is_capped),
        cmocka_unit_test(attempts_next_node_is_least_loaded_untried),
        cmocka_unit_test(attempts_next_node_skips_lost_and_tried),
        cmocka_unit_test(attempts_build_retry_falls_back_to_a_tried_live_node),
        cmocka_unit_test(attempts_next_node_needs_platform_and_executor),
        cmocka_unit_test(schedule_node_selector_matches_labels),
    };
    return cmocka_run_group_tests(tests, s_setup, NULL);
}
