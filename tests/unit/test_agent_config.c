/* test_agent_config.c -- agent/config (agent.yaml and flags) and
 * agent/buildenv (the build step's environment). Every key, the
 * FILE:LINE:COL errors, flag overrides, finishing from the host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buildenv.h"
#include "config.h"
#include "platform.h"

static int s_load(af_agent_config_t *cfg, const char *yaml, af_err_t *err)
{
    af_agent_config_defaults(cfg);
    af_err_clear(err);
    return af_agent_config_load_buffer(cfg, "agent.yaml", yaml, strlen(yaml), err);
}

static void config_defaults_match_the_docs(void **state)
{
    af_agent_config_t cfg;
    af_agent_config_defaults(&cfg);
    assert_string_equal(cfg.listen, "tcp://*:7420");
    assert_string_equal(cfg.workdir, "/var/lib/archfarm-agent");
    assert_string_equal(cfg.executor, "auto");
    assert_int_equal(cfg.max_jobs, 1);
    assert_int_equal(cfg.heartbeat_ms, 1000);
    assert_int_equal(cfg.liveness, 3);
    assert_int_equal(cfg.job_timeout_s, 0);
    assert_int_equal(cfg.context_cache, 4);
    assert_false(cfg.insecure);
    assert_int_equal(cfg.n_platforms, 0);
}

static void config_reads_every_key(void **state)
{
    af_agent_config_t cfg;
    af_err_t err;
    const char *yaml = "listen: tcp://127.0.0.1:7555\n"
                       "name: pi-01\n"
                       "platforms: [linux/arm64, armhf]\n"
                       "workdir: /srv/archfarm\n"
                       "max_jobs: 3\n"
                       "executor: native\n"
                       "insecure: yes\n"
                       "cert: /etc/archfarm/server.cert\n"
                       "authorized_keys: /etc/archfarm/clients\n"
                       "heartbeat_ms: 500\n"
                       "liveness: 5\n"
                       "job_timeout_s: 3600\n"
                       "context_cache: 8\n"
                       "kill_grace_ms: 250\n"
                       "drain_s: 60\n";
    assert_int_equal(s_load(&cfg, yaml, &err), 0);
    assert_string_equal(cfg.listen, "tcp://127.0.0.1:7555");
    assert_string_equal(cfg.name, "pi-01");
    assert_int_equal(cfg.n_platforms, 2);
    char buf[128];
    assert_string_equal(af_agent_config_platforms(&cfg, buf, sizeof buf),
                        "linux/arm64,linux/arm/v7");
    assert_string_equal(cfg.workdir, "/srv/archfarm");
    assert_int_equal(cfg.max_jobs, 3);
    assert_string_equal(cfg.executor, "native");
    assert_true(cfg.insecure);
    assert_string_equal(cfg.cert, "/etc/archfarm/server.cert");
    assert_string_equal(cfg.authorized_keys, "/etc/archfarm/clients");
    assert_int_equal(cfg.heartbeat_ms, 500);
    assert_int_equal(cfg.liveness, 5);
    assert_int_equal(cfg.job_timeout_s, 3600);
    assert_int_equal(cfg.context_cache, 8);
    assert_int_equal(cfg.kill_grace_ms, 250);
    assert_int_equal(cfg.drain_s, 60);
}

static void config_accepts_every_compiled_in_executor(void **state)
{
    const char *names[] = {"auto", "native", "buildah", "buildctl", "docker"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        af_agent_config_t cfg;
        af_err_t err;
        char yaml[64];
        snprintf(yaml, sizeof yaml, "executor: %s\n", names[i]);
        assert_int_equal(s_load(&cfg, yaml, &err), 0);
        assert_string_equal(cfg.executor, names[i]);
    }
}

static void config_platforms_may_be_a_comma_string(void **state)
{
    af_agent_config_t cfg;
    af_err_t err;
    assert_int_equal(s_load(&cfg, "platforms: linux/amd64,linux/386\n", &err), 0);
    assert_int_equal(cfg.n_platforms, 2);
}

static void config_empty_file_keeps_defaults(void **state)
{
    af_agent_config_t cfg;
    af_err_t err;
    assert_int_equal(s_load(&cfg, "", &err), 0);
    assert_string_equal(cfg.listen, "tcp://*:7420");
    assert_int_equal(s_load(&cfg, "# only a comment\n", &err), 0);
    assert_int_equal(s_load(&cfg, "~\n", &err), 0);
}

static void s_expect_error(const char *yaml, const char *needle)
{
    af_agent_config_t cfg;
    af_err_t err;
    int rc = s_load(&cfg, yaml, &err);
    assert_true(rc < 0);
    if (!strstr(err.msg, needle)) {
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.msg, needle);
        fail();
    }
}

static void config_errors_name_file_line_and_column(void **state)
{
    s_expect_error("listen: tcp://*:1\nbogus: 1\n", "agent.yaml:2:1: unknown key: bogus");
    /* issue 12 finding 6: ports wrapped (99999 listened on 34463, -1 on 65535) */
    s_expect_error("listen: tcp://*:99999\n",
                   "agent.yaml:1:9: listen: the port must be a number from 1 to 65535");
    s_expect_error("listen: tcp://*:-1\n",
                   "agent.yaml:1:9: listen: the port must be a number from 1 to 65535");
    s_expect_error("listen: tcp://*:0\n", "agent.yaml:1:9: listen: the port must be");
    s_expect_error("listen: x\n", "agent.yaml:1:9: listen: expected tcp://HOST:PORT or ipc://PATH");
    s_expect_error("max_jobs: 0\n", "agent.yaml:1:11: max_jobs must be an integer from 1 to 256");
    s_expect_error("confine: maybe\n",
                   "agent.yaml:1:10: confine must be auto, required or off, not \"maybe\"");
    s_expect_error("max_jobs: many\n", "agent.yaml:1:11:");
    s_expect_error("max_jobs: -1\n", "max_jobs must be an integer");
    s_expect_error("heartbeat_ms: 99999999999999999999\n", "heartbeat_ms must be an integer");
    s_expect_error("insecure: perhaps\n", "agent.yaml:1:11: insecure must be true or false");
    s_expect_error(
        "executor: podman\n",
        "executor must be one of auto, native, buildah, buildctl, docker, not \"podman\"");
    s_expect_error("platforms:\n  - linux/amd64\n  - not/a/real/thing\n", "agent.yaml:3:5:");
    s_expect_error("platforms: {a: b}\n", "agent.yaml:1:12: platforms must be a list");
    s_expect_error("platforms: [[linux/amd64]]\n", "expected a platform string");
    s_expect_error("- a\n- b\n", "agent.yaml:1:1: expected a mapping");
    s_expect_error("name: [a, b]\n", "agent.yaml:1:7: expected a single value for name");
    s_expect_error("max_jobs: 2\nmax_jobs: 3\n", "agent.yaml:2:1: duplicate key: max_jobs");
    s_expect_error("listen: [unclosed\n", "agent.yaml:");
    s_expect_error("platform: linux/amd64\n",
                   "unknown key: platform"); /* the file says platforms */
}

static void config_rejects_overlong_values(void **state)
{
    char yaml[4096];
    memset(yaml, 0, sizeof yaml);
    strcpy(yaml, "name: ");
    memset(yaml + 6, 'n', AF_MAX_NAME + 5);
    strcat(yaml, "\n");
    s_expect_error(yaml, "name is longer than");
}

static void config_file_missing_is_an_error_naming_it(void **state)
{
    af_agent_config_t cfg;
    af_err_t err;
    af_agent_config_defaults(&cfg);
    assert_int_equal(af_agent_config_load(&cfg, "/nonexistent/agent.yaml", &err), AF_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/agent.yaml"));
}

static void config_loads_the_documented_example(void **state)
{
    const char *src = getenv("AF_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/config/agent.yaml", src ? src : "../..");
    if (access(path, R_OK) != 0)
        skip();
    af_agent_config_t cfg;
    af_err_t err;
    af_err_clear(&err);
    af_agent_config_defaults(&cfg);
    if (af_agent_config_load(&cfg, path, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        fail();
    }
}

static void config_flags_override_the_file(void **state)
{
    af_agent_config_t cfg;
    af_err_t err;
    assert_int_equal(s_load(&cfg, "max_jobs: 2\nplatforms: [linux/amd64]\n", &err), 0);
    assert_int_equal(af_agent_config_set(&cfg, "max-jobs", "5", "--max-jobs", &err), 0);
    assert_int_equal(cfg.max_jobs, 5);
    /* the first --platform replaces the file's list, later ones append */
    assert_int_equal(af_agent_config_set(&cfg, "platforms", "arm64", "--platform", &err), 0);
    assert_int_equal(af_agent_config_set(&cfg, "platform", "linux/arm/v7", "--platform", &err), 0);
    assert_int_equal(af_agent_config_set(&cfg, "platform", "linux/arm64", "--platform", &err), 0);
    char buf[128];
    assert_string_equal(af_agent_config_platforms(&cfg, buf, sizeof buf),
                        "linux/arm64,linux/arm/v7");
    assert_int_equal(af_agent_config_set(&cfg, "job_timeout_s", "90", "--job-timeout", &err), 0);
    assert_int_equal(cfg.job_timeout_s, 90);
    /* --listen is checked like listen: (and like the inventory's port) */
    assert_int_equal(af_agent_config_set(&cfg, "listen", "tcp://*:99999", "--listen", &err),
                     AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "--listen: listen: the port must be a number from 1 to 65535"));
    assert_int_equal(af_agent_config_set(&cfg, "listen", "tcp://127.0.0.1:*", "--listen", &err), 0);
    assert_string_equal(cfg.listen, "tcp://127.0.0.1:*");
}

static void config_flag_errors_name_the_flag(void **state)
{
    af_agent_config_t cfg;
    af_err_t err;
    af_agent_config_defaults(&cfg);
    af_err_clear(&err);
    assert_true(af_agent_config_set(&cfg, "max_jobs", "x", "--max-jobs", &err) < 0);
    assert_non_null(strstr(err.msg, "--max-jobs: max_jobs must be an integer"));
    assert_true(af_agent_config_set(&cfg, "platform", "foo/bar/baz/qux", "--platform", &err) < 0);
    assert_non_null(strstr(err.msg, "--platform:"));
    assert_true(af_agent_config_set(&cfg, "nope", "1", "--nope", &err) < 0);
    assert_non_null(strstr(err.msg, "unknown setting"));
}

static void config_finish_fills_host_platform_and_name(void **state)
{
    af_agent_config_t cfg;
    af_err_t err;
    af_agent_config_defaults(&cfg);
    cfg.insecure = true;
    af_err_clear(&err);
    assert_int_equal(af_agent_config_finish(&cfg, &err), 0);
    assert_int_equal(cfg.n_platforms, 1);
    af_platform_t host;
    assert_int_equal(af_platform_host(&host), 0);
    assert_true(af_platform_equal(&host, &cfg.platforms[0]));
    char hostname[256] = "";
    gethostname(hostname, sizeof hostname - 1);
    assert_string_equal(cfg.name, hostname);
}

static void config_finish_needs_cert_and_keys_without_insecure(void **state)
{
    af_agent_config_t cfg;
    af_err_t err;
    af_agent_config_defaults(&cfg);
    af_err_clear(&err);
    assert_int_equal(af_agent_config_finish(&cfg, &err), AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "no --cert"));
    snprintf(cfg.cert, sizeof cfg.cert, "/etc/archfarm/agent.key");
    assert_int_equal(af_agent_config_finish(&cfg, &err), AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "no --authorized-keys"));
    snprintf(cfg.authorized_keys, sizeof cfg.authorized_keys, "/etc/archfarm/coordinators");
    assert_int_equal(af_agent_config_finish(&cfg, &err), 0);
    cfg.insecure = true;
    snprintf(cfg.name, sizeof cfg.name, "bad name");
    assert_int_equal(af_agent_config_finish(&cfg, &err), AF_ERR_INVAL);
}

/* --- buildenv --- */

static void buildenv_has_buildkit_platform_names(void **state)
{
    af_platform_t target, build;
    assert_int_equal(af_platform_parse("linux/arm/v7", &target, NULL), 0);
    assert_int_equal(af_platform_parse("linux/amd64", &build, NULL), 0);
    char *const base[] = {"PATH=/usr/bin:/bin", "HOME=/root", NULL};
    af_buildenv_spec_t spec = {.target = &target, .build = &build, .source_date_epoch = 1700000000};
    af_err_t err;
    char **env = af_buildenv_new(base, &spec, &err);
    assert_non_null(env);
    assert_string_equal(af_buildenv_get(env, "PATH"), "/usr/bin:/bin");
    assert_string_equal(af_buildenv_get(env, "HOME"), "/root");
    assert_string_equal(af_buildenv_get(env, "TARGETPLATFORM"), "linux/arm/v7");
    assert_string_equal(af_buildenv_get(env, "TARGETOS"), "linux");
    assert_string_equal(af_buildenv_get(env, "TARGETARCH"), "arm");
    assert_string_equal(af_buildenv_get(env, "TARGETVARIANT"), "v7");
    assert_string_equal(af_buildenv_get(env, "BUILDPLATFORM"), "linux/amd64");
    assert_string_equal(af_buildenv_get(env, "BUILDOS"), "linux");
    assert_string_equal(af_buildenv_get(env, "BUILDARCH"), "amd64");
    assert_string_equal(af_buildenv_get(env, "SOURCE_DATE_EPOCH"), "1700000000");
    af_buildenv_destroy(&env);
    assert_null(env);
    af_buildenv_destroy(&env);
}

static void buildenv_variant_is_empty_without_one_and_epoch_defaults_to_zero(void **state)
{
    af_platform_t target;
    assert_int_equal(af_platform_parse("linux/arm64", &target, NULL), 0);
    af_buildenv_spec_t spec = {.target = &target, .build = &target, .source_date_epoch = -1};
    char **env = af_buildenv_new(NULL, &spec, NULL);
    assert_non_null(env);
    assert_string_equal(af_buildenv_get(env, "TARGETVARIANT"), "");
    assert_string_equal(af_buildenv_get(env, "SOURCE_DATE_EPOCH"), "0");
    af_buildenv_destroy(&env);
}

static void buildenv_precedence_agent_then_recipe_then_args_then_platform(void **state)
{
    af_platform_t p;
    assert_int_equal(af_platform_parse("linux/amd64", &p, NULL), 0);
    char *const base[] = {
        "A=agent", "B=agent", "C=agent", "TARGETARCH=spoofed", "NOTIFY_SOCKET=/run/systemd/notify",
        NULL};
    af_kv_t recipe[] = {{"B", "recipe"}, {"C", "recipe"}, {"TARGETOS", "spoofed"}};
    af_kv_t args[] = {{"C", "arg"}, {"D", "arg"}, {"BUILDARCH", "spoofed"}};
    af_buildenv_spec_t spec = {.target = &p,
                               .build = &p,
                               .recipe_env = recipe,
                               .n_recipe_env = 3,
                               .build_args = args,
                               .n_build_args = 3};
    char **env = af_buildenv_new(base, &spec, NULL);
    assert_non_null(env);
    assert_string_equal(af_buildenv_get(env, "A"), "agent");
    assert_string_equal(af_buildenv_get(env, "B"), "recipe");
    assert_string_equal(af_buildenv_get(env, "C"), "arg");
    assert_string_equal(af_buildenv_get(env, "D"), "arg");
    assert_string_equal(af_buildenv_get(env, "TARGETARCH"), "amd64");
    assert_string_equal(af_buildenv_get(env, "TARGETOS"), "linux");
    assert_string_equal(af_buildenv_get(env, "BUILDARCH"), "amd64");
    assert_null(af_buildenv_get(env, "NOTIFY_SOCKET"));
    size_t n_c = 0;
    for (char **e = env; *e; e++)
        n_c += !strncmp(*e, "C=", 2);
    assert_int_equal(n_c, 1); /* replaced, not duplicated */
    af_buildenv_destroy(&env);
}

static void buildenv_rejects_invalid_variable_names(void **state)
{
    af_platform_t p;
    assert_int_equal(af_platform_parse("linux/amd64", &p, NULL), 0);
    const char *bad[] = {"A=B", "1ABC", "", "WITH SPACE", "semi;colon"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_kv_t args[] = {{(char *)bad[i], "x"}};
        af_buildenv_spec_t spec = {
            .target = &p, .build = &p, .build_args = args, .n_build_args = 1};
        af_err_t err;
        af_err_clear(&err);
        assert_null(af_buildenv_new(NULL, &spec, &err));
        assert_int_equal(err.code, AF_ERR_INVAL);
        assert_non_null(strstr(err.msg, "build arg"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_defaults_match_the_docs),
        cmocka_unit_test(config_reads_every_key),
        cmocka_unit_test(config_accepts_every_compiled_in_executor),
        cmocka_unit_test(config_platforms_may_be_a_comma_string),
        cmocka_unit_test(config_empty_file_keeps_defaults),
        cmocka_unit_test(config_errors_name_file_line_and_column),
        cmocka_unit_test(config_rejects_overlong_values),
        cmocka_unit_test(config_file_missing_is_an_error_naming_it),
        cmocka_unit_test(config_loads_the_documented_example),
        cmocka_unit_test(config_flags_override_the_file),
        cmocka_unit_test(config_flag_errors_name_the_flag),
        cmocka_unit_test(config_finish_fills_host_platform_and_name),
        cmocka_unit_test(config_finish_needs_cert_and_keys_without_insecure),
        cmocka_unit_test(buildenv_has_buildkit_platform_names),
        cmocka_unit_test(buildenv_variant_is_empty_without_one_and_epoch_defaults_to_zero),
        cmocka_unit_test(buildenv_precedence_agent_then_recipe_then_args_then_platform),
        cmocka_unit_test(buildenv_rejects_invalid_variable_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
