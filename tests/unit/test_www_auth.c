/* test_www_auth.c -- WWW-Authenticate challenges and header lines as a
 * registry sends them, well-formed and not (common/www_auth.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "www_auth.h"

static void www_auth_bearer_with_quoted_and_bare_params(void **state)
{
    (void)state;
    af_www_auth_t a;
    af_www_auth_parse("Bearer realm=\"https://auth.example/token\",service=registry.example,"
                      "scope=\"repository:team/app:pull,push\"",
                      &a);
    assert_int_equal(a.scheme, AF_WWW_AUTH_BEARER);
    assert_string_equal(a.realm, "https://auth.example/token");
    assert_string_equal(a.service, "registry.example");
    assert_string_equal(a.scope, "repository:team/app:pull,push");
}

static void www_auth_scheme_is_case_insensitive_and_keys_too(void **state)
{
    (void)state;
    af_www_auth_t a;
    af_www_auth_parse("  bEaReR  REALM=\"x\\\"y\" , Service=\"s\"", &a);
    assert_int_equal(a.scheme, AF_WWW_AUTH_BEARER);
    assert_string_equal(a.realm, "x\"y");
    assert_string_equal(a.service, "s");
    af_www_auth_parse("Basic realm=\"Registry Realm\"", &a);
    assert_int_equal(a.scheme, AF_WWW_AUTH_BASIC);
    assert_string_equal(a.realm, "Registry Realm");
    af_www_auth_parse("Bearerx realm=a", &a);
    assert_int_equal(a.scheme, AF_WWW_AUTH_OTHER);
}

static void www_auth_malformed_challenges_are_cut_not_overflowed(void **state)
{
    (void)state;
    af_www_auth_t a;
    af_www_auth_parse("Bearer realm=\"unterminated", &a);
    assert_string_equal(a.realm, "unterminated");
    af_www_auth_parse("Bearer ====,,,\"\"\\", &a);
    assert_string_equal(a.realm, "");
    af_www_auth_parse("", &a);
    assert_int_equal(a.scheme, AF_WWW_AUTH_OTHER);
    size_t n = 3 * AF_WWW_AUTH_REALM_MAX;
    char *big = malloc(n + 32);
    assert_non_null(big);
    strcpy(big, "Bearer scope=\"");
    memset(big + 14, 'a', n);
    strcpy(big + 14 + n, "\"");
    af_www_auth_parse(big, &a);
    assert_int_equal(strlen(a.scope), AF_WWW_AUTH_SCOPE_MAX - 1);
    free(big);
}

static void www_header_value_matches_name_and_trims(void **state)
{
    (void)state;
    const char line[] = "location: \t/v2/app/blobs/uploads/u?x=1 \r\n";
    char *v = af_www_header_value(line, sizeof line - 1, "Location", 100);
    assert_non_null(v);
    assert_string_equal(v, "/v2/app/blobs/uploads/u?x=1");
    free(v);
    assert_null(af_www_header_value(line, sizeof line - 1, "Content-Type", 100));
    assert_null(af_www_header_value("Locationx: y\r\n", 14, "Location", 100));
    assert_null(af_www_header_value("Location", 8, "Location", 100));
    assert_null(af_www_header_value(line, sizeof line - 1, "Location", 10)); /* too long */
    const char nul[] = "Location: a\0b\r\n";
    assert_null(af_www_header_value(nul, sizeof nul - 1, "Location", 100));
    v = af_www_header_value("Location:\r\n", 11, "Location", 100);
    assert_non_null(v);
    assert_string_equal(v, "");
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(www_auth_bearer_with_quoted_and_bare_params),
        cmocka_unit_test(www_auth_scheme_is_case_insensitive_and_keys_too),
        cmocka_unit_test(www_auth_malformed_challenges_are_cut_not_overflowed),
        cmocka_unit_test(www_header_value_matches_name_and_trims),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
