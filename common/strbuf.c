/* strbuf.c -- see strbuf.h. */
#include "strbuf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void af_strbuf_init(af_strbuf_t *sb, char *buf, size_t size)
{
    assert(sb && buf && size > 0);
    *sb = (af_strbuf_t){.buf = buf, .size = size};
    buf[0] = '\0';
}

void af_strbuf_printf(af_strbuf_t *sb, const char *fmt, ...)
{
    if (sb->truncated)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->buf + sb->len, sb->size - sb->len, fmt, ap);
    va_end(ap);
    if (n < 0) { /* an encoding error: keep what was there */
        sb->buf[sb->len] = '\0';
        sb->truncated = true;
    } else if ((size_t)n >= sb->size - sb->len) {
        sb->len = sb->size - 1; /* vsnprintf kept the prefix that fits */
        sb->truncated = true;
    } else {
        sb->len += (size_t)n;
    }
}

bool af_strbuf_truncated(const af_strbuf_t *sb)
{
    return sb->truncated;
}
