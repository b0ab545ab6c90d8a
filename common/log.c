/* log.c -- stderr logging with a level read from $ARCHFARM_LOG. */
#include "log.h"
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static af_log_level_t s_threshold(void)
{
    const char *v = getenv("ARCHFARM_LOG");
    if (!v || !*v)
        return AF_LOG_INFO;
    if (!strcmp(v, "error"))
        return AF_LOG_ERROR;
    if (!strcmp(v, "warn"))
        return AF_LOG_WARN;
    if (!strcmp(v, "debug"))
        return AF_LOG_DEBUG;
    return AF_LOG_INFO;
}

int af_log_enabled(af_log_level_t level)
{
    return level <= s_threshold();
}

void af_log_write(af_log_level_t level, const char *func, const char *job, const char *node,
                  const char *fmt, ...)
{
    static const char *const names[] = {"E", "W", "I", "D"};
    if (!af_log_enabled(level))
        return;
    char line[2048];
    af_strbuf_t sb;
    af_strbuf_init(&sb, line, sizeof line);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    af_strbuf_printf(&sb, "%02d:%02d:%02d.%03ld %s %s: ", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, names[level], func);
    if (job || node)
        af_strbuf_printf(&sb, "[%s %s] ", job ? job : "-", node ? node : "-");
    if (!af_strbuf_truncated(&sb)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + sb.len, sizeof line - sb.len, fmt, ap);
        va_end(ap);
    }
    /* messages quote nodes, registries and builds: no control character
     * reaches a terminal or forges a log line (C0, DEL and UTF-8 C1
     * controls become '?') */
    size_t n = strnlen(line, sizeof line - 2);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            line[i] = '?';
        else if (c == 0xc2 && i + 1 < n && (unsigned char)line[i + 1] >= 0x80 &&
                 (unsigned char)line[i + 1] <= 0x9f)
            line[i] = line[i + 1] = '?';
    }
    /* one write per line so concurrent processes do not interleave */
    line[n] = '\n';
    fwrite(line, 1, n + 1, stderr);
}
