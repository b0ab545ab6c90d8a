/* test_coord_display.c -- the pure rendering of the progress output
 * (coordinator/display.c, compiled in here: the CLI is not a library):
 * terminal-safe text (issue 12 finding 5), GitHub Actions escaping, and
 * the live panel fitted to a width. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../coordinator/display.c"

/* No byte that could drive a terminal survives. */
static void s_assert_inert(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        assert_false(*p < 0x20 && *p != '\n');
        assert_int_not_equal(*p, 0x7f);
    }
}

static void test_sanitize_escapes(void **state)
{
    (void)state;
    char out[256];
    af_display_sanitize("A\033[31mRED\007\rB", out, sizeof out);
    assert_string_equal(out, "A\\x1b[31mRED\\x07\\x0dB");
    s_assert_inert(out);
    /* OSC title change, BEL-terminated; backspace; newline inside a line */
    af_display_sanitize("\033]0;pwned\007x\by\nz", out, sizeof out);
    assert_string_equal(out, "\\x1b]0;pwned\\x07x\\x08y\\x0az");
    /* tab becomes a space, DEL escaped */
    af_display_sanitize("a\tb\x7f", out, sizeof out);
    assert_string_equal(out, "a b\\x7f");
}

static void test_sanitize_utf8(void **state)
{
    (void)state;
    char out[256];
    /* valid UTF-8 passes */
    af_display_sanitize("caf\xc3\xa9 \xe2\x9c\x94 \xf0\x9f\x9a\x80", out, sizeof out);
    assert_string_equal(out, "caf\xc3\xa9 \xe2\x9c\x94 \xf0\x9f\x9a\x80");
    /* C1 CSI as UTF-8 (U+009B) and as a raw byte; overlong ESC; lone
     * continuation; truncated sequence at the end */
    af_display_sanitize("a\xc2\x9b"
                        "31m b\x9b"
                        "c \xc0\x9b d\x80 e\xe2\x9c",
                        out, sizeof out);
    assert_string_equal(out, "a\\xc2\\x9b31m b\\x9bc \\xc0\\x9b d\\x80 e\\xe2\\x9c");
    s_assert_inert(out);
    /* surrogates are not UTF-8 */
    af_display_sanitize("\xed\xa0\x80", out, sizeof out);
    assert_string_equal(out, "\\xed\\xa0\\x80");
}

static void test_sanitize_truncates_whole(void **state)
{
    (void)state;
    char out[6];
    /* "ab" + an escape (4) does not fit in 5 characters: stop before it */
    size_t n = af_display_sanitize("ab\033cd", out, sizeof out);
    assert_string_equal(out, "ab");
    assert_int_equal(n, 2);
    /* a 2-byte character is never cut in half */
    char small[4];
    af_display_sanitize("ab\xc3\xa9", small, sizeof small);
    assert_string_equal(small, "ab");
    assert_int_equal(af_display_sanitize(NULL, small, sizeof small), 0);
}

static void test_gha_escape(void **state)
{
    (void)state;
    char out[256];
    af_gha_escape_data("50% done\r\nnext: a,b", out, sizeof out);
    assert_string_equal(out, "50%25 done%0D%0Anext: a,b");
    af_gha_escape_prop("linux/arm64 on n:1, x%\n", out, sizeof out);
    assert_string_equal(out, "linux/arm64 on n%3A1%2C x%25%0A");
    /* a forged command inside data stays data: no newline survives */
    af_gha_escape_data("x\n::error::forged", out, sizeof out);
    assert_null(strchr(out, '\n'));
    /* never cut inside an escape */
    char small[5];
    af_gha_escape_data("ab%", small, sizeof small);
    assert_string_equal(small, "ab");
}

static void test_render_rows(void **state)
{
    (void)state;
    af_display_t d = {0};
    af_display_row_t *a = af_display_row(&d, "linux/amd64", 1000);
    af_display_row_t *b = af_display_row(&d, "linux/arm64", 1000);
    af_display_row_t *c = af_display_row(&d, "linux/arm/v7", 1000);
    assert_ptr_equal(af_display_row(&d, "linux/amd64", 5000), a);
    assert_int_equal(d.n, 3);
    af_display_set_state(a, "node-a", "sending context", 1000);
    af_display_set_bytes(a, 0, 4 * 1024 * 1024, 1000);
    af_display_set_bytes(a, 2 * 1024 * 1024, 4 * 1024 * 1024, 3000);
    af_display_set_state(b, "node-b", "running", 1000);
    af_display_set_line(b, "compiling \033[1mmain.c\033[0m");
    af_display_set_state(c, "node-c", "running", 1000);
    af_display_set_result(c, true, "sha256:abcd", "", 4500);

    char out[8192];
    int lines = 0;
    size_t n = af_display_render(&d, 5000, 120, 0, out, sizeof out, &lines);
    assert_int_equal(n, strlen(out));
    /* a: row only (no log yet); b: row + log line; c: row + digest */
    assert_int_equal(lines, 5);
    assert_non_null(strstr(out, "linux/amd64"));
    assert_non_null(strstr(out, "node-a"));
    assert_non_null(strstr(out, "sending context"));
    assert_non_null(strstr(out, "[==========>         ] 2.0 MiB / 4.0 MiB 512.0 KiB/s"));
    assert_non_null(strstr(out, "4.0s")); /* elapsed of a, at 5000 since 1000 */
    assert_non_null(strstr(out, "compiling \\x1b[1mmain.c\\x1b[0m"));
    assert_non_null(strstr(out, "OK   linux/arm/v7"));
    assert_non_null(strstr(out, "3.5s")); /* frozen at its end */
    assert_non_null(strstr(out, "     sha256:abcd\n"));
    assert_null(strchr(out, '\033')); /* colour off */
    assert_true(af_display_active(&d));

    /* failed rows keep their reason; retrying restarts the row */
    af_display_set_result(b, false, "", "FAILED (build, exit status 3): boom", 6000);
    n = af_display_render(&d, 7000, 100, 40, out, sizeof out, &lines);
    assert_non_null(strstr(out, "FAIL linux/arm64"));
    assert_non_null(strstr(out, "exit status 3): boom"));
    af_display_set_state(b, "node-b2", "retrying", 8000);
    assert_int_equal(b->outcome, AF_ROW_ACTIVE);
    assert_string_equal(b->node, "node-b2");
    assert_string_equal(b->reason, "");
}

/* Every line fits the width, so nothing wraps and cursor-up counts hold. */
static void test_render_width(void **state)
{
    (void)state;
    af_display_t d = {0};
    d.color = true;
    af_display_row_t *r = af_display_row(&d, "linux/arm64", 0);
    af_display_set_state(r, "a-node-with-a-rather-long-name", "running", 0);
    char longline[400];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    memcpy(longline + 10, "\xc3\xa9\xc3\xa9", 4);
    af_display_set_line(r, longline);
    for (int width = 20; width <= 120; width += 13) {
        char out[4096];
        int lines = 0;
        af_display_render(&d, 1000, width, 24, out, sizeof out, &lines);
        assert_int_equal(lines, 2);
        assert_non_null(strstr(out, "\033[")); /* colour on */
        /* count the visible columns of each line */
        int cols = 0;
        for (const unsigned char *p = (const unsigned char *)out; *p; p++) {
            if (*p == '\033') {
                while (*p && *p != 'm')
                    p++;
                continue;
            }
            if (*p == '\n') {
                assert_true(cols <= width - 1);
                cols = 0;
                continue;
            }
            if ((*p & 0xc0) != 0x80)
                cols++;
        }
    }
}

/* The panel never outgrows the terminal: cursor-up must reach its top. */
static void test_render_height(void **state)
{
    (void)state;
    af_display_t d = {0};
    for (int i = 0; i < 10; i++) {
        char p[32];
        snprintf(p, sizeof p, "linux/p%d", i);
        af_display_row_t *r = af_display_row(&d, p, 0);
        af_display_set_state(r, "n", "running", 0);
        af_display_set_line(r, "a log line");
    }
    char out[8192];
    int lines = 0;
    af_display_render(&d, 0, 80, 0, out, sizeof out, &lines);
    assert_int_equal(lines, 20); /* unlimited: row + log line each */
    af_display_render(&d, 0, 80, 21, out, sizeof out, &lines);
    assert_int_equal(lines, 20); /* fits in 20 */
    af_display_render(&d, 0, 80, 20, out, sizeof out, &lines);
    assert_int_equal(lines, 10); /* log lines dropped */
    assert_null(strstr(out, "a log line"));
    af_display_render(&d, 0, 80, 6, out, sizeof out, &lines);
    assert_int_equal(lines, 5); /* 4 rows + a summary line */
    assert_non_null(strstr(out, "linux/p3"));
    assert_null(strstr(out, "linux/p4"));
    assert_non_null(strstr(out, "... 6 more platforms (6 active)\n"));
}

static void test_bytes(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(af_display_bytes(512, b, sizeof b), "512 B");
    assert_string_equal(af_display_bytes(1536, b, sizeof b), "1.5 KiB");
    assert_string_equal(af_display_bytes(3ULL << 30, b, sizeof b), "3.0 GiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sanitize_escapes),
        cmocka_unit_test(test_sanitize_utf8),
        cmocka_unit_test(test_sanitize_truncates_whole),
        cmocka_unit_test(test_gha_escape),
        cmocka_unit_test(test_render_rows),
        cmocka_unit_test(test_render_width),
        cmocka_unit_test(test_render_height),
        cmocka_unit_test(test_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
