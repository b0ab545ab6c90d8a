/* test_ref.c -- image reference grammar, registry detection and docker.io
 * normalisation (common/ref.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ref.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct {
    const char *in;
    const char *registry;
    const char *repository;
    const char *tag;
    const char *digest;
} good_case_t;

static const good_case_t s_good[] = {
    {"alpine", "docker.io", "library/alpine", "", ""},
    {"alpine:3.19", "docker.io", "library/alpine", "3.19", ""},
    {"library/alpine", "docker.io", "library/alpine", "", ""},
    {"docker.io/alpine", "docker.io", "library/alpine", "", ""},
    {"index.docker.io/alpine", "docker.io", "library/alpine", "", ""},
    {"docker.io/myorg/app:v1", "docker.io", "myorg/app", "v1", ""},
    {"myorg/app", "docker.io", "myorg/app", "", ""},
    {"localhost/app", "localhost", "app", "", ""},
    {"localhost:5000/app", "localhost:5000", "app", "", ""},
    {"localhost:5000/app:latest", "localhost:5000", "app", "latest", ""},
    {"127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000", "team/app", "1.0", ""},
    {"ghcr.io/owner/repo/sub", "ghcr.io", "owner/repo/sub", "", ""},
    {"quay.io/a_b/c__d/e.f/g-h/i---j", "quay.io", "a_b/c__d/e.f/g-h/i---j", "", ""},
    {"registry.example.com:443/x", "registry.example.com:443", "x", "", ""},
    {"my-registry:5000/x", "my-registry:5000", "x", "", ""},
    {"Example.COM/x", "Example.COM", "x", "", ""},
    {"[::1]:5000/app:t", "[::1]:5000", "app", "t", ""},
    {"app@sha256:" D64, "docker.io", "library/app", "", "sha256:" D64},
    {"localhost:5000/app:v2@sha256:" D64, "localhost:5000", "app", "v2", "sha256:" D64},
    {"app:_under", "docker.io", "library/app", "_under", ""},
    {"app:V1.2-rc_3", "docker.io", "library/app", "V1.2-rc_3", ""},
    {"localhost", "docker.io", "library/localhost", "", ""},
    {"localhost:5000", "docker.io", "library/localhost", "5000", ""},
    {"a", "docker.io", "library/a", "", ""},
    {"0/1/2", "docker.io", "0/1/2", "", ""},
};

typedef struct {
    const char *in;
    const char *why; /* a substring of the message */
} bad_case_t;

static const bad_case_t s_bad[] = {
    {"", "empty"},
    {"App", "lowercase"},
    {"docker.io/MyOrg/app", "lowercase"},
    {"app:", "empty tag"},
    {":tag", "missing repository"},
    {"app:-bad", "invalid character in tag"},
    {"app:.bad", "invalid character in tag"},
    {"app:a/b", "invalid"},
    {"app:t@g", "invalid digest"},
    {"app@sha256:abc", "64 hex"},
    {"app@sha256:" D64 "00", "64 hex"},
    {"app@sha512:" D64, "only sha256"},
    {"app@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
     "lowercase hex"},
    {"app@", "invalid digest"},
    {"a//b", "empty path component"},
    {"/app", "empty path component"},
    {"app/", "empty path component"},
    {"localhost:5000/", "missing repository"},
    {"-app", "start and end"},
    {"app-", "start and end"},
    {"a...b", "separator"},
    {"a___b", "separator"},
    {"a._b", "separator"},
    {"a b", "invalid character"},
    {"a$b/c", "invalid character"},
    {"exa_mple.com/app", "registry host"},
    {"-example.com/app", "registry host"},
    {"example..com/app", "registry host"},
    {"example.com:/app", "port"},
    {"example.com:99999a/app", "port"},
    {"example.com:123456/app", "port"},
    {"[::1/app", "IPv6"},
};

static void ref_accepts_valid_references_and_normalises(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_good / sizeof s_good[0]; i++) {
        const good_case_t *c = &s_good[i];
        af_ref_t r;
        af_err_t err;
        af_err_clear(&err);
        int rc = af_ref_parse(c->in, &r, &err);
        if (rc != 0)
            fail_msg("'%s' rejected: %s", c->in, err.msg);
        if (strcmp(r.registry, c->registry) || strcmp(r.repository, c->repository) ||
            strcmp(r.tag, c->tag) || strcmp(r.digest, c->digest))
            fail_msg("'%s' -> registry '%s' repo '%s' tag '%s' digest '%s'", c->in, r.registry,
                     r.repository, r.tag, r.digest);
    }
}

static void ref_rejects_invalid_references_naming_the_input(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad[0]; i++) {
        const bad_case_t *c = &s_bad[i];
        af_ref_t r;
        af_err_t err;
        af_err_clear(&err);
        int rc = af_ref_parse(c->in, &r, &err);
        if (rc != AF_ERR_INVAL)
            fail_msg("'%s' accepted (rc %d) as %s/%s:%s", c->in, rc, r.registry, r.repository,
                     r.tag);
        char quoted[600];
        snprintf(quoted, sizeof quoted, "\"%s\"", c->in);
        if (!strstr(err.msg, quoted) || !strstr(err.msg, c->why))
            fail_msg("'%s': message '%s' lacks the input or '%s'", c->in, err.msg, c->why);
        assert_string_equal(r.repository, "");
    }
}

static void ref_rejects_overlong_names(void **state)
{
    (void)state;
    char s[AF_MAX_REF + 16];
    af_ref_t r;
    af_err_t err;
    /* 256 characters of repository: over the grammar's 255 */
    memset(s, 'a', 256);
    s[256] = '\0';
    assert_int_equal(af_ref_parse(s, &r, &err), AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "255"));
    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    assert_int_equal(af_ref_parse(s, &r, &err), AF_ERR_INVAL);
    /* a tag of 129 characters */
    char t[200] = "app:";
    memset(t + 4, 'x', 129);
    t[133] = '\0';
    assert_int_equal(af_ref_parse(t, &r, &err), AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "128"));
    t[132] = '\0'; /* 128 is fine */
    assert_int_equal(af_ref_parse(t, &r, &err), 0);
    assert_int_equal(strlen(r.tag), 128);
}

static void ref_parse_null_is_an_error(void **state)
{
    (void)state;
    af_ref_t r;
    assert_int_equal(af_ref_parse(NULL, &r, NULL), AF_ERR_INVAL);
}

static void ref_format_round_trips(void **state)
{
    (void)state;
    af_ref_t r;
    char buf[1024];
    assert_int_equal(af_ref_parse("localhost:5000/app:v1@sha256:" D64, &r, NULL), 0);
    assert_string_equal(af_ref_format(&r, buf, sizeof buf), "localhost:5000/app:v1@sha256:" D64);
    assert_string_equal(af_ref_format_repo(&r, buf, sizeof buf), "localhost:5000/app");
    assert_int_equal(af_ref_parse("alpine", &r, NULL), 0);
    assert_string_equal(af_ref_format(&r, buf, sizeof buf), "docker.io/library/alpine");
    af_ref_t again;
    assert_int_equal(af_ref_parse(buf, &again, NULL), 0);
    assert_memory_equal(&r, &again, sizeof r);
}

static void ref_reference_prefers_digest_then_tag_then_latest(void **state)
{
    (void)state;
    af_ref_t r;
    assert_int_equal(af_ref_parse("app", &r, NULL), 0);
    assert_string_equal(af_ref_reference(&r), "latest");
    assert_int_equal(af_ref_parse("app:v3", &r, NULL), 0);
    assert_string_equal(af_ref_reference(&r), "v3");
    assert_int_equal(af_ref_parse("app:v3@sha256:" D64, &r, NULL), 0);
    assert_string_equal(af_ref_reference(&r), "sha256:" D64);
}

static void ref_api_host_maps_docker_io_only(void **state)
{
    (void)state;
    assert_string_equal(af_ref_api_host("docker.io"), "registry-1.docker.io");
    assert_string_equal(af_ref_api_host("localhost:5000"), "localhost:5000");
    assert_string_equal(af_ref_api_host("ghcr.io"), "ghcr.io");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ref_accepts_valid_references_and_normalises),
        cmocka_unit_test(ref_rejects_invalid_references_naming_the_input),
        cmocka_unit_test(ref_rejects_overlong_names),
        cmocka_unit_test(ref_parse_null_is_an_error),
        cmocka_unit_test(ref_format_round_trips),
        cmocka_unit_test(ref_reference_prefers_digest_then_tag_then_latest),
        cmocka_unit_test(ref_api_host_maps_docker_io_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
