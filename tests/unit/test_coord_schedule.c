/* test_coord_schedule.c -- the coordinator's node choice (coordinator/
 * schedule.c, compiled in here: the CLI is not a library). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../coordinator/schedule.c"

static char *s_native[] = {"native"};
static char *s_buildah[] = {"native", "buildah"};
static char *s_amd64[] = {"linux/amd64"};
static char *s_arm64[] = {"linux/arm64"};

static af_platform_t s_p(const char *s)
{
    af_platform_t p;
    assert_int_equal(af_platform_parse(s, &p, NULL), 0);
    return p;
}

static af_candidate_t s_cand(const char *name, const af_platform_t *plat, char **announced,
                             unsigned running, unsigned max_jobs, int priority)
{
    af_candidate_t c = {0};
    c.name = name;
    c.ready = true;
    c.platforms = plat;
    c.n_platforms = 1;
    c.announced = announced;
    c.n_announced = 1;
    c.executors = s_native;
    c.n_executors = 1;
    c.running = running;
    c.max_jobs = max_jobs;
    c.priority = priority;
    return c;
}

static void schedule_picks_least_loaded_node(void **state)
{
    af_platform_t amd = s_p("linux/amd64");
    af_candidate_t c[] = {
        s_cand("busy", &amd, s_amd64, 2, 2, 0),
        s_cand("half", &amd, s_amd64, 2, 4, 0),
    };
    size_t chosen[1];
    assert_int_equal(af_schedule_pick(c, 2, &amd, 1, "native", chosen, NULL), 0);
    assert_int_equal(chosen[0], 1);
}

static void schedule_prefers_lower_priority_on_equal_load(void **state)
{
    af_platform_t amd = s_p("linux/amd64");
    af_candidate_t c[] = {
        s_cand("a", &amd, s_amd64, 0, 1, 5),
        s_cand("b", &amd, s_amd64, 0, 1, 1),
    };
    size_t chosen[1];
    assert_int_equal(af_schedule_pick(c, 2, &amd, 1, "native", chosen, NULL), 0);
    assert_int_equal(chosen[0], 1);
}

static void schedule_breaks_ties_by_name(void **state)
{
    af_platform_t amd = s_p("linux/amd64");
    af_candidate_t c[] = {
        s_cand("zed", &amd, s_amd64, 0, 1, 0),
        s_cand("abe", &amd, s_amd64, 0, 1, 0),
    };
    size_t chosen[1];
    assert_int_equal(af_schedule_pick(c, 2, &amd, 1, "native", chosen, NULL), 0);
    assert_int_equal(chosen[0], 1);
}

static void schedule_counts_slices_given_in_this_build(void **state)
{
    af_platform_t multi[2] = {s_p("linux/amd64"), s_p("linux/arm64")};
    char *both[] = {"linux/amd64", "linux/arm64"};
    af_candidate_t c[2];
    c[0] = s_cand("a", multi, both, 0, 1, 0);
    c[0].n_platforms = 2;
    c[0].n_announced = 2;
    c[1] = s_cand("b", multi, both, 0, 1, 0);
    c[1].n_platforms = 2;
    c[1].n_announced = 2;
    size_t chosen[2];
    assert_int_equal(af_schedule_pick(c, 2, multi, 2, "native", chosen, NULL), 0);
    assert_int_equal(chosen[0], 0);
    assert_int_equal(chosen[1], 1); /* a already got one slice */
}

static void schedule_requires_agent_to_announce_platform(void **state)
{
    af_platform_t arm = s_p("linux/arm64");
    af_candidate_t c[] = {s_cand("liar", &arm, s_amd64, 0, 1, 0)};
    size_t chosen[1];
    af_err_t err = {0};
    assert_int_equal(af_schedule_pick(c, 1, &arm, 1, "native", chosen, &err), AF_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "liar (agent does not announce linux/arm64)"));
}

static void schedule_dockerfile_needs_an_engine(void **state)
{
    af_platform_t arm = s_p("linux/arm64");
    af_candidate_t c[] = {
        s_cand("plain", &arm, s_arm64, 0, 1, 0),
        s_cand("engine", &arm, s_arm64, 5, 1, 0),
    };
    c[1].executors = s_buildah;
    c[1].n_executors = 2;
    size_t chosen[1];
    assert_int_equal(af_schedule_pick(c, 2, &arm, 1, "dockerfile", chosen, NULL), 0);
    assert_int_equal(chosen[0], 1);
    c[1].ready = false;
    c[1].why_not_ready = "unreachable";
    af_err_t err = {0};
    assert_int_equal(af_schedule_pick(c, 2, &arm, 1, "dockerfile", chosen, &err), AF_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "no node can build linux/arm64 (dockerfile recipe)"));
    assert_non_null(strstr(err.msg, "plain (no Dockerfile engine among its executors)"));
    assert_non_null(strstr(err.msg, "engine (unreachable)"));
}

static void schedule_no_node_serving_platform_says_none(void **state)
{
    af_platform_t amd = s_p("linux/amd64");
    af_platform_t s390 = s_p("linux/s390x");
    af_candidate_t c[] = {s_cand("a", &amd, s_amd64, 0, 1, 0)};
    size_t chosen[1];
    af_err_t err = {0};
    assert_int_equal(af_schedule_pick(c, 1, &s390, 1, "native", chosen, &err), AF_ERR_NOTFOUND);
    assert_string_equal(err.msg,
                        "no node can build linux/s390x (native recipe): nodes serving it: none");
}

static void schedule_skips_unready_nodes(void **state)
{
    af_platform_t amd = s_p("linux/amd64");
    af_candidate_t c[] = {
        s_cand("down", &amd, s_amd64, 0, 8, 0),
        s_cand("up", &amd, s_amd64, 3, 1, 9),
    };
    c[0].ready = false;
    size_t chosen[1];
    assert_int_equal(af_schedule_pick(c, 2, &amd, 1, "native", chosen, NULL), 0);
    assert_int_equal(chosen[0], 1);
}

static void executor_ok_native_always_dockerfile_only_with_engine(void **state)
{
    assert_true(af_schedule_executor_ok("native", NULL, 0));
    assert_false(af_schedule_executor_ok("dockerfile", s_native, 1));
    assert_true(af_schedule_executor_ok("dockerfile", s_buildah, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(schedule_picks_least_loaded_node),
        cmocka_unit_test(schedule_prefers_lower_priority_on_equal_load),
        cmocka_unit_test(schedule_breaks_ties_by_name),
        cmocka_unit_test(schedule_counts_slices_given_in_this_build),
        cmocka_unit_test(schedule_requires_agent_to_announce_platform),
        cmocka_unit_test(schedule_dockerfile_needs_an_engine),
        cmocka_unit_test(schedule_no_node_serving_platform_says_none),
        cmocka_unit_test(schedule_skips_unready_nodes),
        cmocka_unit_test(executor_ok_native_always_dockerfile_only_with_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
