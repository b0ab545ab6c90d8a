/* fuzz_display.c -- libFuzzer target for the terminal-safe text of the
 * progress output (coordinator/display.c, compiled in: the CLI is not a
 * library). Build output is arbitrary bytes from a build step.
 *
 * Each input (up to its first NUL) is sanitized into buffers of several
 * sizes, escaped for GitHub Actions, and rendered as a panel row. Whatever
 * the bytes: the sanitized text holds no byte below 0x20, no DEL, no C1
 * control and is valid UTF-8; it never overflows; escaped workflow-command
 * data holds no CR or LF; every rendered line fits the width. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../coordinator/display.c"

static void s_check_inert(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (strlen(s) != n)
        abort();
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x20 || p[i] == 0x7f)
            abort();
        size_t k = s_utf8_len(p + i);
        if (!k) /* not valid UTF-8, or a C1 control */
            abort();
        i += k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    static const size_t caps[] = {1, 2, 5, 17, 256, 8192};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        char *out = malloc(caps[c]);
        if (!out)
            break;
        size_t n = af_display_sanitize(in, out, caps[c]);
        if (n >= caps[c])
            abort();
        s_check_inert(out, n);
        n = af_gha_escape_prop(in, out, caps[c]);
        if (n >= caps[c] || memchr(out, '\n', n) || memchr(out, '\r', n))
            abort();
        free(out);
    }
    af_display_t d = {0};
    af_display_row_t *r = af_display_row(&d, in, 0);
    if (r) {
        af_display_set_state(r, in, in, 0);
        af_display_set_line(r, in);
        char buf[4096];
        int lines = 0;
        int width = 20 + (int)(size % 100);
        size_t n = af_display_render(&d, 1000, width, 0, buf, sizeof buf, &lines);
        if (n >= sizeof buf || lines < 1 || lines > 2)
            abort();
        int cols = 0;
        for (const unsigned char *p = (const unsigned char *)buf; *p; p++) {
            if (*p == '\n') {
                if (cols > width - 1)
                    abort();
                cols = 0;
            } else if ((*p & 0xc0) != 0x80) {
                cols++;
            }
        }
    }
    free(in);
    return 0;
}
