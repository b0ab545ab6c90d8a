/* display.c -- pure rendering for the progress output (see display.h). */
#include "display.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at S (1..4), or 0 when S does not
 * start one (overlong forms, surrogates and > U+10FFFF are invalid). */
static size_t s_utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    if (cp >= 0x80 && cp <= 0x9f) /* C1 controls: CSI, OSC... */
        return 0;
    return n;
}

size_t af_display_sanitize(const char *in, char *out, size_t cap)
{
    if (!cap)
        return 0;
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)(in ? in : "");
    while (*s) {
        size_t n = s_utf8_len(s);
        if (n == 1 && *s == '\t') {
            if (o + 1 >= cap)
                break;
            out[o++] = ' ';
            s++;
        } else if (n == 0 || (n == 1 && (*s < 0x20 || *s == 0x7f))) {
            /* an invalid lead byte is escaped alone; what follows is
             * looked at again */
            if (o + 4 >= cap)
                break;
            snprintf(out + o, 5, "\\x%02x", *s);
            o += 4;
            s++;
        } else {
            if (o + n >= cap)
                break;
            memcpy(out + o, s, n);
            o += n;
            s += n;
        }
    }
    out[o] = '\0';
    return o;
}

static size_t s_gha_escape(const char *in, char *out, size_t cap, bool prop)
{
    if (!cap)
        return 0;
    size_t o = 0;
    for (const char *p = in ? in : ""; *p; p++) {
        const char *esc = NULL;
        switch (*p) {
        case '%':
            esc = "%25";
            break;
        case '\r':
            esc = "%0D";
            break;
        case '\n':
            esc = "%0A";
            break;
        case ':':
            esc = prop ? "%3A" : NULL;
            break;
        case ',':
            esc = prop ? "%2C" : NULL;
            break;
        default:
            break;
        }
        size_t n = esc ? 3 : 1;
        if (o + n >= cap)
            break;
        if (esc)
            memcpy(out + o, esc, 3);
        else
            out[o] = *p;
        o += n;
    }
    out[o] = '\0';
    return o;
}

size_t af_gha_escape_data(const char *in, char *out, size_t cap)
{
    return s_gha_escape(in, out, cap, false);
}

size_t af_gha_escape_prop(const char *in, char *out, size_t cap)
{
    return s_gha_escape(in, out, cap, true);
}

af_display_row_t *af_display_row(af_display_t *d, const char *platform, long long now_ms)
{
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->rows[i].platform, platform))
            return &d->rows[i];
    if (d->n >= AF_DISPLAY_ROWS)
        return NULL;
    af_display_row_t *r = &d->rows[d->n++];
    memset(r, 0, sizeof *r);
    af_display_sanitize(platform, r->platform, sizeof r->platform);
    r->started_ms = now_ms;
    return r;
}

void af_display_set_state(af_display_row_t *r, const char *node, const char *state,
                          long long now_ms)
{
    if (!strcmp(state, "retrying")) {
        /* a new attempt: the row starts again */
        r->outcome = AF_ROW_ACTIVE;
        r->started_ms = now_ms;
        r->ended_ms = 0;
        r->bytes_done = r->bytes_total = 0;
        r->digest[0] = r->reason[0] = r->last_line[0] = '\0';
    }
    if (node)
        af_display_sanitize(node, r->node, sizeof r->node);
    af_display_sanitize(state, r->state, sizeof r->state);
}

void af_display_set_line(af_display_row_t *r, const char *line)
{
    af_display_sanitize(line, r->last_line, sizeof r->last_line);
}

void af_display_set_bytes(af_display_row_t *r, uint64_t done, uint64_t total, long long now_ms)
{
    if (!r->bytes_started_ms || done < r->bytes_done)
        r->bytes_started_ms = now_ms;
    r->bytes_done = done;
    r->bytes_total = total;
}

void af_display_set_result(af_display_row_t *r, bool ok, const char *digest, const char *reason,
                           long long now_ms)
{
    r->outcome = ok ? AF_ROW_OK : AF_ROW_FAILED;
    r->ended_ms = now_ms;
    af_display_sanitize(digest, r->digest, sizeof r->digest);
    af_display_sanitize(reason, r->reason, sizeof r->reason);
}

bool af_display_active(const af_display_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->rows[i].outcome == AF_ROW_ACTIVE)
            return true;
    return false;
}

const char *af_display_bytes(uint64_t n, char *out, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, cap, "%llu B", (unsigned long long)n);
    else
        snprintf(out, cap, "%.1f %s", v, units[u]);
    return out;
}

/* One output line being built: visible columns are counted and capped;
 * colour escapes cost no column. */
typedef struct {
    char *out;
    size_t cap, len;
    int cols, max_cols;
} s_line_t;

static void s_raw(s_line_t *l, const char *s)
{
    size_t n = strlen(s);
    if (l->len + n + 2 >= l->cap) /* keep room for "\n" */
        return;
    memcpy(l->out + l->len, s, n);
    l->len += n;
    l->out[l->len] = '\0';
}

/* Visible, already sanitized text; stops at the width (at a character
 * boundary). */
static void s_text(s_line_t *l, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p && l->cols < l->max_cols) {
        size_t n = s_utf8_len(p);
        if (!n)
            n = 1;
        if (l->len + n + 2 >= l->cap)
            return;
        memcpy(l->out + l->len, p, n);
        l->len += n;
        l->cols++;
        p += n;
    }
    l->out[l->len] = '\0';
}

static void s_textf(s_line_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_textf(s_line_t *l, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s_text(l, buf);
}

static void s_color(s_line_t *l, bool on, const char *sgr)
{
    if (on)
        s_raw(l, sgr);
}

static void s_bar(s_line_t *l, const af_display_row_t *r, long long now_ms)
{
    if (!r->bytes_total)
        return;
    int w = 20;
    uint64_t done = r->bytes_done > r->bytes_total ? r->bytes_total : r->bytes_done;
    int fill = (int)((double)done / (double)r->bytes_total * w);
    char bar[32];
    for (int i = 0; i < w; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[w] = '\0';
    char b1[32], b2[32], b3[32];
    double secs = r->bytes_started_ms && now_ms > r->bytes_started_ms
                      ? (now_ms - r->bytes_started_ms) / 1000.0
                      : 0;
    s_textf(l, " [%s] %s / %s", bar, af_display_bytes(done, b1, sizeof b1),
            af_display_bytes(r->bytes_total, b2, sizeof b2));
    if (secs > 0.05)
        s_textf(l, " %s/s", af_display_bytes((uint64_t)(done / secs), b3, sizeof b3));
}

static void s_end_line(s_line_t *l, int *n_lines)
{
    if (l->len + 1 < l->cap) {
        l->out[l->len++] = '\n';
        l->out[l->len] = '\0';
        (*n_lines)++;
    }
}

static const char *s_second(const af_display_row_t *r)
{
    return r->outcome == AF_ROW_OK       ? r->digest
           : r->outcome == AF_ROW_FAILED ? r->reason
                                         : r->last_line;
}

size_t af_display_render(const af_display_t *d, long long now_ms, int width, int height, char *out,
                         size_t cap, int *n_lines)
{
    int lines = 0;
    if (!cap)
        return 0;
    out[0] = '\0';
    if (width < 20)
        width = 20;
    size_t pw = 8, nw = 4;
    for (size_t i = 0; i < d->n; i++) {
        size_t a = strlen(d->rows[i].platform), b = strlen(d->rows[i].node);
        pw = a > pw ? a : pw;
        nw = b > nw ? b : nw;
    }
    if (pw > 24)
        pw = 24;
    if (nw > 24)
        nw = 24;
    /* fit the height: second lines go first, then rows */
    size_t budget = height > 1 ? (size_t)height - 1 : (size_t)-1, full = d->n, shown = d->n;
    for (size_t i = 0; i < d->n; i++)
        full += s_second(&d->rows[i])[0] ? 1 : 0;
    bool seconds = full <= budget;
    if (!seconds && d->n > budget)
        shown = budget > 1 ? budget - 1 : 0;
    s_line_t l = {.out = out, .cap = cap, .len = 0, .max_cols = width - 1};
    for (size_t i = 0; i < shown; i++) {
        const af_display_row_t *r = &d->rows[i];
        long long end = r->outcome == AF_ROW_ACTIVE || !r->ended_ms ? now_ms : r->ended_ms;
        double secs = end > r->started_ms ? (end - r->started_ms) / 1000.0 : 0;
        l.cols = 0;
        const char *mark = r->outcome == AF_ROW_OK       ? "OK  "
                           : r->outcome == AF_ROW_FAILED ? "FAIL"
                                                         : "=>  ";
        const char *sgr = r->outcome == AF_ROW_OK       ? "\033[32m"
                          : r->outcome == AF_ROW_FAILED ? "\033[31;1m"
                                                        : "\033[36m";
        s_color(&l, d->color, sgr);
        s_text(&l, mark);
        s_color(&l, d->color, "\033[0m");
        s_textf(&l, " %-*.*s %-*.*s %6.1fs  ", (int)pw, (int)pw, r->platform, (int)nw, (int)nw,
                r->node[0] ? r->node : "-", secs);
        if (r->outcome == AF_ROW_ACTIVE) {
            s_text(&l, r->state[0] ? r->state : "waiting");
            if (!strcmp(r->state, "sending context") || !strcmp(r->state, "context sent"))
                s_bar(&l, r, now_ms);
        } else {
            s_text(&l, r->outcome == AF_ROW_OK ? (r->state[0] ? r->state : "done") : "FAILED");
        }
        s_end_line(&l, &lines);

        const char *second = s_second(r);
        if (seconds && second[0]) {
            l.cols = 0;
            s_color(&l, d->color, r->outcome == AF_ROW_FAILED ? "\033[31m" : "\033[2m");
            s_text(&l, "     ");
            s_text(&l, second);
            s_color(&l, d->color, "\033[0m");
            s_end_line(&l, &lines);
        }
    }
    if (shown < d->n) {
        size_t active = 0;
        for (size_t i = shown; i < d->n; i++)
            active += d->rows[i].outcome == AF_ROW_ACTIVE;
        l.cols = 0;
        s_textf(&l, "... %zu more platforms (%zu active)", d->n - shown, active);
        s_end_line(&l, &lines);
    }
    if (n_lines)
        *n_lines = lines;
    return l.len;
}
