/* strbuf.h -- a string joined into a fixed buffer the caller owns.
 *
 * Replaces `off += snprintf(buf + off, size - off, ...)`, where one
 * missing `off < size` check overflows. Appends never write past SIZE;
 * once one did not fit, the buffer holds the longest prefix that did
 * (always NUL-terminated) and af_strbuf_truncated() says so. No
 * allocation: the af_strbuf_t and the buffer are both the caller's, and
 * the buffer is only borrowed for the builder's life. */
#ifndef AF_COMMON_STRBUF_H
#define AF_COMMON_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *buf;   /* borrowed, SIZE bytes */
    size_t size; /* > 0 */
    size_t len;  /* strlen(buf) */
    bool truncated;
} af_strbuf_t;

/* Starts an empty string in BUF (SIZE > 0 bytes). */
void af_strbuf_init(af_strbuf_t *sb, char *buf, size_t size);

/* Appends printf(FMT, ...), cut short at the buffer's end. */
void af_strbuf_printf(af_strbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True once an append did not fit. */
bool af_strbuf_truncated(const af_strbuf_t *sb);

#endif
