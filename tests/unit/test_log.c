/* test_log.c -- common/log.c: one call is one line, and control
 * characters from what a message quotes (a node's ERROR, a registry's
 * reply, a build) are neutralised (issue 12 finding 5). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "stderr_capture.h"

/* Runs af_warn(MSG) with stderr captured into OUT. */
static void s_capture(const char *msg, char *out, size_t cap)
{
    s_capture_t c;
    s_capture_begin(&c);
    af_warn("node says: %s", msg);
    s_capture_end(&c, out, cap);
}

static void control_characters_are_neutralised(void **state)
{
    (void)state;
    setenv("ARCHFARM_LOG", "info", 1);
    char out[512];
    s_capture("A\033[31mRED\007\rB\nforged line\x7f \xc2\x9b"
              "31m caf\xc3\xa9\tend",
              out, sizeof out);
    const char *msg = strstr(out, "node says: ");
    assert_non_null(msg);
    assert_string_equal(msg, "node says: A?[31mRED??B?forged line? ??31m caf\xc3\xa9\tend\n");
    /* exactly one line */
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(control_characters_are_neutralised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
