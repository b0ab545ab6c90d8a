/* test_base64.c -- pins base64 encoding of credentials (RFC 4648 vectors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base64.h"

static void base64_rfc4648_vectors(void **state)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char *got = af_base64_encode(in[i], strlen(in[i]));
        assert_non_null(got);
        assert_string_equal(got, want[i]);
        free(got);
    }
}

static void base64_user_pass_joins_with_a_colon(void **state)
{
    char *got = af_base64_user_pass("user", "p:ss w0rd");
    assert_string_equal(got, "dXNlcjpwOnNzIHcwcmQ=");
    free(got);
    got = af_base64_user_pass("u", NULL); /* "u:" */
    assert_string_equal(got, "dTo=");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64_rfc4648_vectors),
        cmocka_unit_test(base64_user_pass_joins_with_a_colon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
