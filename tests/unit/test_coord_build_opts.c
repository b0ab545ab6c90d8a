/* test_coord_build_opts.c -- `archfarm build` option parsing and request
 * checks (coordinator/cmd_build.c and the recipe/epoch rules of build.c),
 * all of which must settle before any network traffic. The coordinator is
 * not a library, so its files are compiled in here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../coordinator/attempts.c"
#include "../../coordinator/build.c"
#include "../../coordinator/cli.c"
#include "../../coordinator/cmd_build.c"
#include "../../coordinator/ctxcache.c"
#include "../../coordinator/display.c"
#include "../../coordinator/farm.c"
#include "../../coordinator/metadata.c"
#include "../../coordinator/preflight.c"
#include "../../coordinator/progress.c"
#include "../../coordinator/publish.c"
#include "../../coordinator/schedule.c"
#include "../../coordinator/signals.c"
#include "../../coordinator/slicecache.c"
#include "../../coordinator/slices.c"

static char s_dir[64];

static int s_setup(void **state)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/test_coord_build_opts.XXXXXX");
    if (!mkdtemp(s_dir))
        return -1;
    char p[128];
    snprintf(p, sizeof p, "%s/sub", s_dir);
    mkdir(p, 0755);
    return 0;
}

static int s_teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void s_touch(const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", s_dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
}

/* A minimal valid native recipe at REL (the coordinator loads it). */
static void s_recipe_file(const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", s_dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("build:\n  run: \"true\"\n", f);
    fclose(f);
}

static void s_rm(const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", s_dir, rel);
    unlink(p);
}

/* Runs s_parse on a NULL-terminated argument list; returns its result and
 * leaves the options in *o (caller frees keys via s_free). */
static int s_run(af_build_opts_t *o, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "build";
    va_list ap;
    va_start(ap, o);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    memset(o, 0, sizeof *o);
    o->fail_fast = true;
    o->probe_timeout_ms = AF_PROBE_TIMEOUT_MS;
    return s_parse(o, argc, argv);
}

static void s_free(af_build_opts_t *o)
{
    for (size_t i = 0; i < o->n_build_args; i++)
        free(o->build_arg_keys[i]);
    for (size_t i = 0; i < o->n_selectors; i++)
        free(o->selector_keys[i]);
    o->n_build_args = o->n_selectors = 0;
}

static void build_opts_fault_tolerance_flags(void **state)
{
    af_build_opts_t *o = calloc(1, sizeof *o);
    unsetenv("ARCHFARM_HEARTBEAT_MS");
    unsetenv("ARCHFARM_LIVENESS");
    assert_int_equal(s_run(o, "-t", "localhost:5000/app", "--retries", "5",
                           "--retry-on-build-failure", "--node-selector", "zone=lab",
                           "--node-selector", "gpu", "--heartbeat-interval", "250", "--liveness",
                           "5", s_dir, NULL),
                     -1);
    assert_int_equal(o->retries, 5);
    assert_true(o->retry_on_build_failure);
    assert_int_equal(o->n_selectors, 2);
    assert_string_equal(o->selectors[0].key, "zone");
    assert_string_equal(o->selectors[0].value, "lab");
    assert_string_equal(o->selectors[1].key, "gpu");
    assert_string_equal(o->selectors[1].value, "");
    assert_int_equal(o->heartbeat_ms, 250);
    assert_int_equal(o->liveness, 5);
    s_free(o);
    free(o);
}

static void build_opts_liveness_from_environment_flags_win(void **state)
{
    af_build_opts_t *o = calloc(1, sizeof *o);
    setenv("ARCHFARM_HEARTBEAT_MS", "400", 1);
    setenv("ARCHFARM_LIVENESS", "6", 1);
    assert_int_equal(s_run(o, "-t", "localhost:5000/app", s_dir, NULL), -1);
    assert_int_equal(o->heartbeat_ms, 400);
    assert_int_equal(o->liveness, 6);
    assert_int_equal(s_run(o, "-t", "localhost:5000/app", "--liveness", "2", s_dir, NULL), -1);
    assert_int_equal(o->liveness, 2);
    setenv("ARCHFARM_LIVENESS", "zero", 1);
    assert_int_equal(s_run(o, "-t", "localhost:5000/app", s_dir, NULL), AF_EXIT_USAGE);
    unsetenv("ARCHFARM_HEARTBEAT_MS");
    unsetenv("ARCHFARM_LIVENESS");
    free(o);
}

static void build_opts_fault_tolerance_usage_errors(void **state)
{
    af_build_opts_t *o = calloc(1, sizeof *o);
    const char *bad[][2] = {
        {"--retries", "9"},
        {"--retries", "-1"},
        {"--retries", "x"},
        {"--liveness", "0"},
        {"--liveness", "101"},
        {"--heartbeat-interval", "10"},
        {"--heartbeat-interval", "60001"},
        {"--node-selector", "=v"},
        {"--node-selector", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(s_run(o, "-t", "localhost:5000/app", bad[i][0], bad[i][1], s_dir, NULL),
                         AF_EXIT_USAGE);
        s_free(o);
    }
    free(o);
}

static void build_opts_full_command_line_is_accepted(void **state)
{
    af_build_opts_t *o = calloc(1, sizeof *o);
    int rc =
        s_run(o, "--platform", "linux/amd64,aarch64", "--platform", "linux/arm64,armhf", "-t",
              "localhost:5000/app:1.0", "--tag", "localhost:5000/app:latest", "--push",
              "--build-arg", "A=1", "--build-arg", "A=2", "--build-arg", "B=x=y", "--target",
              "final", "--progress", "json", "--metadata-file", "m.json", "--insecure-registry",
              "reg.lan", "--no-fail-fast", "--timeout", "60", s_dir, NULL);
    assert_int_equal(rc, -1);
    assert_int_equal(o->n_platforms, 3); /* aarch64 == linux/arm64, deduplicated */
    assert_string_equal(o->platforms[2].arch, "arm");
    assert_string_equal(o->platforms[2].variant, "v7");
    assert_int_equal(o->n_tags, 2);
    assert_true(o->push);
    assert_int_equal(o->n_build_args, 2);
    assert_string_equal(o->build_args[0].value, "2"); /* the last A wins */
    assert_string_equal(o->build_args[1].value, "x=y");
    assert_string_equal(o->target, "final");
    assert_int_equal(o->progress, AF_PROGRESS_JSON);
    assert_false(o->fail_fast);
    assert_int_equal(o->timeout_s, 60);
    assert_true(af_insecure_match(&o->insecure, "reg.lan:443"));
    s_free(o);
    free(o);
}

static void build_opts_default_platform_is_the_host(void **state)
{
    af_build_opts_t *o = calloc(1, sizeof *o);
    assert_int_equal(s_run(o, "-t", "localhost:5000/app", s_dir, NULL), -1);
    af_platform_t host;
    assert_int_equal(af_platform_host(&host), 0);
    assert_int_equal(o->n_platforms, 1);
    assert_true(af_platform_equal(&o->platforms[0], &host));
    free(o);
}

static void build_opts_usage_errors_exit_2(void **state)
{
    af_build_opts_t *o = calloc(1, sizeof *o);
    assert_int_equal(s_run(o, "-t", "localhost:5000/app", NULL), AF_EXIT_USAGE); /* no context */
    assert_int_equal(s_run(o, "-t", "localhost:5000/app", s_dir, s_dir, NULL), AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t", "localhost:5000/app", "/nonexistent-ctx", NULL), AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "--push", s_dir, NULL), AF_EXIT_USAGE);
    assert_int_equal(s_run(o, s_dir, NULL), AF_EXIT_USAGE); /* no -t at all */
    assert_int_equal(s_run(o, "-t", "Bad Ref", s_dir, NULL), AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t", "localhost:5000/a:1", "-t", "localhost:5000/b:1", s_dir, NULL),
                     AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t", "localhost:5000/a:1", "-t", "otherhost:5000/a:1", s_dir, NULL),
                     AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t",
                           "localhost:5000/a@sha256:" /* digest in a tag */
                           "0000000000000000000000000000000000000000000000000000000000000000",
                           s_dir, NULL),
                     AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t", "localhost:5000/a", "--platform", "linux/", s_dir, NULL),
                     AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t", "localhost:5000/a", "--progress", "fancy", s_dir, NULL),
                     AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t", "localhost:5000/a", "--build-arg", "1X=y", s_dir, NULL),
                     AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t", "localhost:5000/a", "--build-arg", "=y", s_dir, NULL),
                     AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t", "localhost:5000/a", "--timeout", "0", s_dir, NULL),
                     AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t", "localhost:5000/a", "--timeout", "12x", s_dir, NULL),
                     AF_EXIT_USAGE);
    assert_int_equal(
        s_run(o, "-t", "localhost:5000/a", "--insecure-registry", "https://x", s_dir, NULL),
        AF_EXIT_USAGE);
    assert_int_equal(s_run(o, "-t", "localhost:5000/a", "--no-such-flag", s_dir, NULL),
                     AF_EXIT_USAGE);
    s_free(o);
    free(o);
}

static void build_arg_without_value_comes_from_the_environment(void **state)
{
    af_build_opts_t *o = calloc(1, sizeof *o);
    setenv("AF_TEST_ARG", "from-env", 1);
    unsetenv("AF_TEST_UNSET");
    assert_int_equal(s_run(o, "-t", "localhost:5000/a", "--build-arg", "AF_TEST_ARG", "--build-arg",
                           "AF_TEST_UNSET", s_dir, NULL),
                     -1);
    assert_int_equal(o->n_build_args, 1); /* an unset variable is not passed */
    assert_string_equal(o->build_args[0].key, "AF_TEST_ARG");
    assert_string_equal(o->build_args[0].value, "from-env");
    s_free(o);
    free(o);
}

/* s_recipe, the parsed recipe dropped (a native one must parse). */
static int s_recipe_only(const af_build_opts_t *o, af_build_spec_t *spec)
{
    af_recipe_t *r = NULL;
    int rc = s_recipe(o, spec, &r);
    if (!rc && !strcmp(spec->recipe_kind, "native"))
        assert_non_null(r);
    af_recipe_destroy(&r);
    return rc;
}

static void recipe_native_wins_over_dockerfile_and_f_selects(void **state)
{
    af_build_opts_t *o = calloc(1, sizeof *o);
    af_build_spec_t spec;
    o->context = s_dir;

    memset(&spec, 0, sizeof spec);
    assert_int_equal(s_recipe_only(o, &spec), AF_EXIT_USAGE); /* neither */

    s_touch("Dockerfile");
    memset(&spec, 0, sizeof spec);
    assert_int_equal(s_recipe_only(o, &spec), 0);
    assert_string_equal(spec.recipe_kind, "dockerfile");
    assert_string_equal(spec.recipe_path, "Dockerfile");

    s_touch("archfarm.yaml"); /* empty: refused here, before any node */
    memset(&spec, 0, sizeof spec);
    assert_int_equal(s_recipe_only(o, &spec), AF_EXIT_USAGE);
    s_recipe_file("archfarm.yaml");
    memset(&spec, 0, sizeof spec);
    assert_int_equal(s_recipe_only(o, &spec), 0);
    assert_string_equal(spec.recipe_kind, "native");
    assert_string_equal(spec.recipe_path, "archfarm.yaml");

    s_touch("sub/Build.df");
    o->file = "sub/Build.df"; /* relative to the context */
    memset(&spec, 0, sizeof spec);
    assert_int_equal(s_recipe_only(o, &spec), 0);
    assert_string_equal(spec.recipe_kind, "dockerfile");
    assert_string_equal(spec.recipe_path, "sub/Build.df");

    s_recipe_file("sub/other.yml");
    char abs[256];
    snprintf(abs, sizeof abs, "%s/sub/other.yml", s_dir);
    o->file = abs;
    memset(&spec, 0, sizeof spec);
    assert_int_equal(s_recipe_only(o, &spec), 0);
    assert_string_equal(spec.recipe_kind, "native");
    assert_string_equal(spec.recipe_path, "sub/other.yml");

    o->file = "/etc/hostname"; /* outside the context */
    assert_int_equal(s_recipe_only(o, &spec), AF_EXIT_USAGE);
    o->file = "sub/missing";
    assert_int_equal(s_recipe_only(o, &spec), AF_EXIT_USAGE);

    s_rm("Dockerfile");
    s_rm("archfarm.yaml");
    s_rm("sub/Build.df");
    s_rm("sub/other.yml");
    free(o);
}

static void source_date_epoch_build_arg_beats_environment(void **state)
{
    af_build_opts_t *o = calloc(1, sizeof *o);
    int64_t sde = -1;
    unsetenv("SOURCE_DATE_EPOCH");
    assert_int_equal(s_source_date_epoch(o, &sde), 0);
    assert_int_equal(sde, 0);
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    assert_int_equal(s_source_date_epoch(o, &sde), 0);
    assert_int_equal(sde, 1700000000);
    o->build_args[0].key = "SOURCE_DATE_EPOCH";
    o->build_args[0].value = "42";
    o->n_build_args = 1;
    assert_int_equal(s_source_date_epoch(o, &sde), 0);
    assert_int_equal(sde, 42);
    o->build_args[0].value = "yesterday";
    assert_int_equal(s_source_date_epoch(o, &sde), AF_EXIT_USAGE);
    o->build_args[0].value = "-5";
    assert_int_equal(s_source_date_epoch(o, &sde), AF_EXIT_USAGE);
    unsetenv("SOURCE_DATE_EPOCH");
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_opts_full_command_line_is_accepted),
        cmocka_unit_test(build_opts_default_platform_is_the_host),
        cmocka_unit_test(build_opts_fault_tolerance_flags),
        cmocka_unit_test(build_opts_liveness_from_environment_flags_win),
        cmocka_unit_test(build_opts_fault_tolerance_usage_errors),
        cmocka_unit_test(build_opts_usage_errors_exit_2),
        cmocka_unit_test(build_arg_without_value_comes_from_the_environment),
        cmocka_unit_test(recipe_native_wins_over_dockerfile_and_f_selects),
        cmocka_unit_test(source_date_epoch_build_arg_beats_environment),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
