/* test_strbuf.c -- joins into a fixed buffer never overflow, keep the
 * prefix that fits and say they were cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "strbuf.h"

static void joins_what_fits(void **state)
{
    (void)state;
    char buf[16];
    af_strbuf_t sb;
    af_strbuf_init(&sb, buf, sizeof buf);
    assert_string_equal(buf, "");
    const char *parts[] = {"amd64", "arm64", "armv7"};
    for (size_t i = 0; i < 3; i++)
        af_strbuf_printf(&sb, "%s%s", i ? "," : "", parts[i]);
    assert_string_equal(buf, "amd64,arm64,arm");
    assert_true(af_strbuf_truncated(&sb));
    af_strbuf_printf(&sb, "more");
    assert_string_equal(buf, "amd64,arm64,arm");
    assert_int_equal(strlen(buf), sizeof buf - 1);
}

static void exact_fit_is_not_truncated(void **state)
{
    (void)state;
    char guard_before[8] = "GUARDXX", buf[6], guard_after[8] = "GUARDYY";
    af_strbuf_t sb;
    af_strbuf_init(&sb, buf, sizeof buf);
    af_strbuf_printf(&sb, "%d", 12);
    af_strbuf_printf(&sb, "%s", "345");
    assert_string_equal(buf, "12345");
    assert_false(af_strbuf_truncated(&sb));
    af_strbuf_printf(&sb, "6");
    assert_true(af_strbuf_truncated(&sb));
    assert_string_equal(buf, "12345");
    assert_string_equal(guard_before, "GUARDXX");
    assert_string_equal(guard_after, "GUARDYY");
}

static void one_byte_buffer(void **state)
{
    (void)state;
    char buf[1];
    af_strbuf_t sb;
    af_strbuf_init(&sb, buf, sizeof buf);
    af_strbuf_printf(&sb, "%s", "");
    assert_false(af_strbuf_truncated(&sb));
    af_strbuf_printf(&sb, "x");
    assert_true(af_strbuf_truncated(&sb));
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(joins_what_fits),
        cmocka_unit_test(exact_fit_is_not_truncated),
        cmocka_unit_test(one_byte_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
