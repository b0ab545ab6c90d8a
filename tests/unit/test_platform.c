/* test_platform.c -- platform parsing, containerd normalisation, lists and
 * host detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/utsname.h>

#include <cmocka.h>

#include "platform.h"

/* Parses IN and asserts it formats as WANT. */
static void s_norm(const char *in, const char *want)
{
    af_platform_t p;
    af_err_t err;
    af_err_clear(&err);
    int rc = af_platform_parse(in, &p, &err);
    if (rc != 0)
        fail_msg("parse(\"%s\") failed: %s", in, err.msg);
    char buf[AF_PLATFORM_STR_MAX];
    assert_string_equal(af_platform_format(&p, buf, sizeof buf), want);
}

/* Asserts IN is rejected with a message containing WHY and naming IN. */
static void s_bad(const char *in, const char *why)
{
    af_platform_t p;
    af_err_t err;
    af_err_clear(&err);
    assert_int_equal(af_platform_parse(in, &p, &err), AF_ERR_INVAL);
    assert_int_equal(err.code, AF_ERR_INVAL);
    if (!strstr(err.msg, why))
        fail_msg("parse(\"%s\"): message \"%s\" lacks \"%s\"", in, err.msg, why);
}

static void platform_amd64_aliases_normalise(void **state)
{
    (void)state;
    s_norm("linux/amd64", "linux/amd64");
    s_norm("amd64", "linux/amd64");
    s_norm("x86_64", "linux/amd64");
    s_norm("x86-64", "linux/amd64");
    s_norm("linux/x86_64", "linux/amd64");
    s_norm("LINUX/AMD64", "linux/amd64");
}

static void platform_amd64_v1_dropped_v2_to_v4_kept(void **state)
{
    (void)state;
    s_norm("linux/amd64/v1", "linux/amd64");
    s_norm("amd64/v1", "linux/amd64");
    s_norm("linux/amd64/v2", "linux/amd64/v2");
    s_norm("linux/amd64/v3", "linux/amd64/v3");
    s_norm("linux/amd64/v4", "linux/amd64/v4");
    s_bad("linux/amd64/v5", "variant \"v5\" is not valid for amd64");
}

static void platform_arm64_aliases_drop_v8(void **state)
{
    (void)state;
    s_norm("linux/arm64", "linux/arm64");
    s_norm("arm64", "linux/arm64");
    s_norm("aarch64", "linux/arm64");
    s_norm("arm64/v8", "linux/arm64");
    s_norm("linux/arm64/v8", "linux/arm64");
    s_norm("linux/aarch64/v8", "linux/arm64");
    s_norm("linux/arm64/v8.2", "linux/arm64/v8.2");
    s_bad("linux/arm64/v7", "variant \"v7\" is not valid for arm64");
}

static void platform_arm32_aliases_get_variants(void **state)
{
    (void)state;
    s_norm("arm", "linux/arm/v7");
    s_norm("linux/arm", "linux/arm/v7");
    s_norm("arm/v7", "linux/arm/v7");
    s_norm("linux/arm/v7", "linux/arm/v7");
    s_norm("armhf", "linux/arm/v7");
    s_norm("armv7l", "linux/arm/v7");
    s_norm("armv7", "linux/arm/v7");
    s_norm("linux/arm/7", "linux/arm/v7");
    s_norm("armel", "linux/arm/v6");
    s_norm("armv6l", "linux/arm/v6");
    s_norm("arm/v6", "linux/arm/v6");
    s_norm("linux/arm/v6", "linux/arm/v6");
    s_norm("arm/v5", "linux/arm/v5");
    s_norm("armv5tel", "linux/arm/v5");
    s_norm("linux/arm/v8", "linux/arm/v8");
    s_bad("linux/arm/v9", "variant \"v9\" is not valid for arm");
    s_bad("armhf/v6", "is not valid for arm");
}

static void platform_386_aliases_normalise(void **state)
{
    (void)state;
    s_norm("i386", "linux/386");
    s_norm("i686", "linux/386");
    s_norm("386", "linux/386");
    s_norm("linux/386", "linux/386");
    s_bad("linux/386/v2", "not valid for 386");
}

static void platform_other_arches_accepted(void **state)
{
    (void)state;
    s_norm("linux/ppc64le", "linux/ppc64le");
    s_norm("s390x", "linux/s390x");
    s_norm("linux/riscv64", "linux/riscv64");
    s_norm("windows/amd64", "windows/amd64");
    s_norm("freebsd/arm64", "freebsd/arm64");
    s_bad("linux/riscv64/v1", "not valid for riscv64");
}

static void platform_os_alone_is_an_error(void **state)
{
    (void)state;
    s_bad("linux", "an os needs an architecture");
    s_bad("Windows", "an os needs an architecture");
}

static void platform_junk_rejected(void **state)
{
    (void)state;
    s_bad("", "empty");
    s_bad("/", "empty component");
    s_bad("linux/", "empty component");
    s_bad("/amd64", "empty component");
    s_bad("linux//amd64", "empty component");
    s_bad("linux/amd64/", "empty component");
    s_bad("linux/amd64/v2/x", "expected os/arch[/variant]");
    s_bad("linux/sparc", "unknown architecture \"sparc\"");
    s_bad("plan10/amd64", "unknown os \"plan10\"");
    s_bad("foo", "unknown architecture \"foo\"");
    s_bad("linux/amd 64", "unexpected character");
    s_bad(" linux/amd64", "unexpected character");
    s_bad("linux/amd64\n", "unexpected character");
    s_bad("linux/\xff\xfe", "invalid platform \"linux/??\"");
    s_bad("linux/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          "too long");
    s_bad("linux/armv7lxyz", "unknown architecture");
    s_bad("linux/arm64/v8.x", "not valid for arm64");
    s_bad("linux/arm64/v8.12", "not valid for arm64");
    af_platform_t p;
    assert_int_equal(af_platform_parse(NULL, &p, NULL), AF_ERR_INVAL);
}

static void platform_format_and_equal(void **state)
{
    (void)state;
    af_platform_t a, b;
    assert_int_equal(af_platform_parse("aarch64", &a, NULL), 0);
    assert_int_equal(af_platform_parse("linux/arm64/v8", &b, NULL), 0);
    assert_true(af_platform_equal(&a, &b));
    assert_string_equal(a.os, "linux");
    assert_string_equal(a.arch, "arm64");
    assert_string_equal(a.variant, "");
    assert_int_equal(af_platform_parse("armhf", &b, NULL), 0);
    assert_false(af_platform_equal(&a, &b));
    char small[8];
    af_platform_format(&b, small, sizeof small);
    assert_string_equal(small, "linux/a"); /* truncated, NUL terminated */
}

static void platform_uname_machine_names(void **state)
{
    (void)state;
    static const struct {
        const char *in, *machine;
    } t[] = {{"linux/amd64", "x86_64"},  {"linux/arm64", "aarch64"},   {"linux/arm/v7", "armv7l"},
             {"linux/arm/v6", "armv6l"}, {"linux/arm/v5", "armv5tel"}, {"linux/386", "i686"},
             {"linux/s390x", "s390x"},   {"linux/ppc64le", "ppc64le"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        af_platform_t p, back;
        assert_int_equal(af_platform_parse(t[i].in, &p, NULL), 0);
        assert_string_equal(af_platform_uname_machine(&p), t[i].machine);
        /* and the machine name parses back to the same platform */
        assert_int_equal(af_platform_parse(t[i].machine, &back, NULL), 0);
        assert_true(af_platform_equal(&p, &back));
    }
}

static void platform_host_matches_uname(void **state)
{
    (void)state;
    af_platform_t host, want;
    assert_int_equal(af_platform_host(&host), 0);
    struct utsname u;
    assert_int_equal(uname(&u), 0);
    assert_int_equal(af_platform_parse(u.machine, &want, NULL), 0);
    assert_true(af_platform_equal(&host, &want));
    assert_string_equal(host.os, "linux");
}

static void platform_list_trims_and_dedupes(void **state)
{
    (void)state;
    af_platform_t out[8];
    size_t n = 99;
    af_err_t err;
    assert_int_equal(af_platform_parse_list(" linux/amd64 , aarch64,linux/arm64/v8,\tarmhf,x86_64 ",
                                            out, 8, &n, &err),
                     0);
    assert_int_equal(n, 3);
    char buf[AF_PLATFORM_STR_MAX];
    assert_string_equal(af_platform_format(&out[0], buf, sizeof buf), "linux/amd64");
    assert_string_equal(af_platform_format(&out[1], buf, sizeof buf), "linux/arm64");
    assert_string_equal(af_platform_format(&out[2], buf, sizeof buf), "linux/arm/v7");
    assert_int_equal(af_platform_parse_list("linux/s390x", out, 1, &n, NULL), 0);
    assert_int_equal(n, 1);
}

static void platform_list_errors(void **state)
{
    (void)state;
    af_platform_t out[2];
    size_t n = 7;
    af_err_t err;
    af_err_clear(&err);
    assert_int_equal(af_platform_parse_list("", out, 2, &n, &err), AF_ERR_INVAL);
    assert_string_equal(err.msg, "empty platform list");
    assert_int_equal(n, 0);
    assert_int_equal(af_platform_parse_list("  ", out, 2, &n, &err), AF_ERR_INVAL);
    assert_string_equal(err.msg, "empty platform list");
    assert_int_equal(af_platform_parse_list(NULL, out, 2, &n, &err), AF_ERR_INVAL);
    assert_int_equal(af_platform_parse_list("linux/amd64,,linux/arm64", out, 2, &n, &err),
                     AF_ERR_INVAL);
    assert_string_equal(err.msg, "platform list \"linux/amd64,,linux/arm64\": item 2 is empty");
    assert_int_equal(af_platform_parse_list("linux/amd64,", out, 2, &n, &err), AF_ERR_INVAL);
    assert_non_null(strstr(err.msg, "item 2 is empty"));
    assert_int_equal(af_platform_parse_list("linux/amd64,linux/mips9", out, 2, &n, &err),
                     AF_ERR_INVAL);
    assert_string_equal(err.msg,
                        "invalid platform \"linux/mips9\": unknown architecture \"mips9\"");
    assert_int_equal(af_platform_parse_list("amd64,arm64,arm", out, 2, &n, &err), AF_ERR_INVAL);
    assert_string_equal(err.msg, "platform list: more than 2 platforms");
    /* duplicates do not count against max */
    assert_int_equal(af_platform_parse_list("amd64,x86_64,arm64,aarch64", out, 2, &n, &err), 0);
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(platform_amd64_aliases_normalise),
        cmocka_unit_test(platform_amd64_v1_dropped_v2_to_v4_kept),
        cmocka_unit_test(platform_arm64_aliases_drop_v8),
        cmocka_unit_test(platform_arm32_aliases_get_variants),
        cmocka_unit_test(platform_386_aliases_normalise),
        cmocka_unit_test(platform_other_arches_accepted),
        cmocka_unit_test(platform_os_alone_is_an_error),
        cmocka_unit_test(platform_junk_rejected),
        cmocka_unit_test(platform_format_and_equal),
        cmocka_unit_test(platform_uname_machine_names),
        cmocka_unit_test(platform_host_matches_uname),
        cmocka_unit_test(platform_list_trims_and_dedupes),
        cmocka_unit_test(platform_list_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
