/* test_credentials.c -- auth file lookup order, entry formats, base64
 * padding and malformed files (common/credentials.c). Every test runs in
 * a fresh temp dir that stands in for HOME, DOCKER_CONFIG and
 * XDG_RUNTIME_DIR. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credentials.h"

typedef struct {
    char dir[256];
    char path[512];
} fixture_t;

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/af_cred_XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    char p[512];
    snprintf(p, sizeof p, "%s/home", fx->dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/home/.docker", fx->dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/dc", fx->dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/run", fx->dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/run/containers", fx->dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/home", fx->dir);
    setenv("HOME", p, 1);
    snprintf(p, sizeof p, "%s/dc", fx->dir);
    setenv("DOCKER_CONFIG", p, 1);
    snprintf(p, sizeof p, "%s/run", fx->dir);
    setenv("XDG_RUNTIME_DIR", p, 1);
    unsetenv("REGISTRY_AUTH_FILE");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

/* Writes TEXT as DOCKER_CONFIG/config.json (or another file under the dir). */
static const char *s_file(fixture_t *fx, const char *rel, const char *text)
{
    snprintf(fx->path, sizeof fx->path, "%s/%s", fx->dir, rel);
    s_write(fx->path, text);
    return fx->path;
}

static void s_expect(const char *host, const char *user, const char *pass)
{
    char *u = NULL, *p = NULL;
    af_err_t err;
    af_err_clear(&err);
    int rc = af_credentials_lookup(host, &u, &p, &err);
    if (rc)
        fail_msg("%s: %s", host, err.msg);
    if (!user) {
        assert_null(u);
        assert_null(p);
        return;
    }
    assert_non_null(u);
    assert_non_null(p);
    assert_string_equal(u, user);
    assert_string_equal(p, pass);
    free(u);
    free(p);
}

static int s_expect_error(const char *host, const char *needle)
{
    char *u = NULL, *p = NULL;
    af_err_t err;
    af_err_clear(&err);
    int rc = af_credentials_lookup(host, &u, &p, &err);
    assert_true(rc < 0);
    assert_null(u);
    assert_null(p);
    if (!strstr(err.msg, needle))
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
    return rc;
}

static void credentials_decodes_base64_auth_for_host_key(void **state)
{
    s_file(*state, "dc/config.json",
           "{\"auths\":{\"localhost:5000\":{\"auth\":\"YWxpY2U6czNjcjN0\"}}}");
    s_expect("localhost:5000", "alice", "s3cr3t");
    s_expect("localhost:5001", NULL, NULL);
}

static void credentials_base64_padding_variants_decode_exactly(void **state)
{
    /* "user:pw" (2 pad), "user:pw1" (1 pad), "user:pw12" (none), and
     * "user:pw" again without its padding */
    s_file(*state, "dc/config.json",
           "{\"auths\":{\"a.example\":{\"auth\":\"dXNlcjpwdw==\"},"
           "\"b.example\":{\"auth\":\"dXNlcjpwdzE=\"},"
           "\"c.example\":{\"auth\":\"dXNlcjpwdzEy\"},"
           "\"d.example\":{\"auth\":\"dXNlcjpwdw\"}}}");
    s_expect("a.example", "user", "pw");
    s_expect("b.example", "user", "pw1");
    s_expect("c.example", "user", "pw12");
    s_expect("d.example", "user", "pw");
}

static void credentials_password_may_contain_colons_and_be_empty(void **state)
{
    /* "bob:a:b:c" and "bob:" */
    s_file(*state, "dc/config.json",
           "{\"auths\":{\"x.io\":{\"auth\":\"Ym9iOmE6Yjpj\"},\"y.io\":{\"auth\":\"Ym9iOg==\"}}}");
    s_expect("x.io", "bob", "a:b:c");
    s_expect("y.io", "bob", "");
}

static void credentials_url_keys_and_docker_io_aliases_match(void **state)
{
    s_file(*state, "dc/config.json",
           "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1YnB3\"},"
           "\"http://reg.local:5000\":{\"auth\":\"cmw6cmxwdw==\"}}}");
    s_expect("docker.io", "hub", "hubpw");
    s_expect("registry-1.docker.io", "hub", "hubpw");
    s_expect("reg.local:5000", "rl", "rlpw");
}

static void credentials_username_password_fields_are_read(void **state)
{
    s_file(*state, "dc/config.json",
           "{\"auths\":{\"q.io\":{\"username\":\"carol\",\"password\":\"pw\"}}}");
    s_expect("q.io", "carol", "pw");
}

static void credentials_host_key_wins_over_namespace_key(void **state)
{
    s_file(*state, "dc/config.json",
           "{\"auths\":{\"q.io/team\":{\"username\":\"ns\",\"password\":\"1\"},"
           "\"q.io\":{\"username\":\"host\",\"password\":\"2\"}}}");
    s_expect("q.io", "host", "2");
}

static void credentials_registry_auth_file_wins_over_docker_config(void **state)
{
    fixture_t *fx = *state;
    s_file(fx, "dc/config.json", "{\"auths\":{\"r.io\":{\"username\":\"dc\",\"password\":\"1\"}}}");
    const char *p =
        s_file(fx, "auth.json", "{\"auths\":{\"r.io\":{\"username\":\"raf\",\"password\":\"2\"}}}");
    setenv("REGISTRY_AUTH_FILE", p, 1);
    s_expect("r.io", "raf", "2");
    unsetenv("REGISTRY_AUTH_FILE");
    s_expect("r.io", "dc", "1");
}

static void credentials_fall_through_to_home_and_xdg(void **state)
{
    fixture_t *fx = *state;
    /* an entry with no credentials (credsStore style) does not stop the search */
    s_file(fx, "dc/config.json", "{\"auths\":{\"h.io\":{}},\"credsStore\":\"desktop\"}");
    s_file(fx, "home/.docker/config.json",
           "{\"auths\":{\"h.io\":{\"username\":\"home\",\"password\":\"h\"}}}");
    s_file(fx, "run/containers/auth.json",
           "{\"auths\":{\"x.io\":{\"username\":\"xdg\",\"password\":\"x\"}}}");
    s_expect("h.io", "home", "h");
    s_expect("x.io", "xdg", "x");
    s_expect("none.io", NULL, NULL);
}

static void credentials_no_files_means_no_credentials(void **state)
{
    (void)state;
    s_expect("localhost:5000", NULL, NULL);
}

static void credentials_malformed_json_names_file_and_line(void **state)
{
    fixture_t *fx = *state;
    s_file(fx, "dc/config.json", "{\"auths\":\n{\"a\": }\n");
    assert_int_equal(s_expect_error("a", "config.json:2:"), AF_ERR_PARSE);
}

static void credentials_wrong_types_are_errors(void **state)
{
    fixture_t *fx = *state;
    s_file(fx, "dc/config.json", "[1,2]");
    assert_int_equal(s_expect_error("a", "not a JSON object"), AF_ERR_PARSE);
    s_file(fx, "dc/config.json", "{\"auths\":[]}");
    assert_int_equal(s_expect_error("a", "\"auths\" is not an object"), AF_ERR_PARSE);
    s_file(fx, "dc/config.json", "{\"auths\":{\"a\":\"x\"}}");
    assert_int_equal(s_expect_error("a", "auths.\"a\": not an object"), AF_ERR_PARSE);
    s_file(fx, "dc/config.json", "{\"auths\":{\"a\":{\"auth\":5}}}");
    assert_int_equal(s_expect_error("a", "auth: not a string"), AF_ERR_PARSE);
    s_file(fx, "dc/config.json", "{\"auths\":{\"a\":{\"username\":\"u\",\"password\":1}}}");
    assert_int_equal(s_expect_error("a", "must be strings"), AF_ERR_PARSE);
}

static void credentials_bad_base64_is_an_error(void **state)
{
    fixture_t *fx = *state;
    s_file(fx, "dc/config.json", "{\"auths\":{\"a\":{\"auth\":\"!!!!\"}}}");
    assert_int_equal(s_expect_error("a", "invalid base64"), AF_ERR_PARSE);
    /* "nocolon" */
    s_file(fx, "dc/config.json", "{\"auths\":{\"a\":{\"auth\":\"bm9jb2xvbg==\"}}}");
    assert_int_equal(s_expect_error("a", "username:password"), AF_ERR_PARSE);
    /* ":pw" -- empty user */
    s_file(fx, "dc/config.json", "{\"auths\":{\"a\":{\"auth\":\"OnB3\"}}}");
    assert_int_equal(s_expect_error("a", "username:password"), AF_ERR_PARSE);
}

static void credentials_oversized_file_is_refused(void **state)
{
    fixture_t *fx = *state;
    snprintf(fx->path, sizeof fx->path, "%s/dc/config.json", fx->dir);
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    fputs("{\"x\":\"", f);
    for (int i = 0; i < AF_CREDENTIALS_MAX_BYTES / 64 + 1; i++)
        fputs("0123456789012345678901234567890123456789012345678901234567890123", f);
    fputs("\"}", f);
    fclose(f);
    assert_int_equal(s_expect_error("a", "larger than"), AF_ERR_TOOBIG);
}

static void credentials_invalid_arguments_are_errors(void **state)
{
    (void)state;
    char *u = NULL, *p = NULL;
    assert_int_equal(af_credentials_lookup(NULL, &u, &p, NULL), AF_ERR_INVAL);
    assert_int_equal(af_credentials_lookup("", &u, &p, NULL), AF_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(credentials_decodes_base64_auth_for_host_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(credentials_base64_padding_variants_decode_exactly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(credentials_password_may_contain_colons_and_be_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(credentials_url_keys_and_docker_io_aliases_match, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(credentials_username_password_fields_are_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(credentials_host_key_wins_over_namespace_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(credentials_registry_auth_file_wins_over_docker_config,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(credentials_fall_through_to_home_and_xdg, setup, teardown),
        cmocka_unit_test_setup_teardown(credentials_no_files_means_no_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(credentials_malformed_json_names_file_and_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(credentials_wrong_types_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(credentials_bad_base64_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(credentials_oversized_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(credentials_invalid_arguments_are_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
