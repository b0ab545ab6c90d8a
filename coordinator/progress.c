/* progress.c -- build progress output (see progress.h): prefixed lines, a
 * live panel (rendered by display.c) or GitHub Actions workflow commands
 * on stderr, or JSON events on stdout built with jansson. This is CLI
 * output code, so it prints directly. */
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "display.h"
#include "strbuf.h"

#define AF_GHA_TAIL 12           /* log lines quoted in a failed slice's ::error */
#define AF_PENDING_MAX (1 << 20) /* tty: scrolled text buffered between redraws */
#define AF_TEXT_MAX 4096

/* SIGWINCH: the only process-wide state, a flag the tick looks at */
static volatile sig_atomic_t s_winch;

static void s_on_winch(int sig)
{
    (void)sig;
    s_winch = 1;
}

struct af_progress {
    af_progress_mode_t mode; /* PLAIN, TTY, GHA, JSON or QUIET after resolution */
    af_display_t disp;       /* tty and gha: one row per platform */
    /* tty */
    char *pending; /* text to scroll above the panel at the next redraw */
    size_t pending_len, pending_cap;
    int panel_lines; /* lines of the panel now on screen, below the cursor's line */
    bool dirty, final, winch_installed;
    long long last_draw_ms;
    struct sigaction old_winch;
    /* gha: each row's log of its current attempt (a temp file) and tail */
    FILE *gha_log[AF_DISPLAY_ROWS];
    char (*tail)[AF_GHA_TAIL][200];
    size_t tail_n[AF_DISPLAY_ROWS];
    char token[40]; /* ::stop-commands:: token around build output */
};

static long long s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes all of BUF to stderr (bypassing stdio so the panel and the
 * scrolled text go out in one piece). */
static void s_write_all(const char *buf, size_t len)
{
    fflush(stderr);
    while (len) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

/* ---- tty ---------------------------------------------------------------- */

/* The terminal's size now (re-read at every redraw, so a resize takes
 * effect at the next one; SIGWINCH makes that next one immediate). */
static void s_size(int *width, int *height)
{
    struct winsize ws;
    *width = 80;
    *height = 0;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        *width = ws.ws_col;
        *height = ws.ws_row;
        return;
    }
    const char *c = getenv("COLUMNS");
    int n = c ? atoi(c) : 0;
    if (n > 0)
        *width = n;
}

/* Erases the panel, scrolls the pending text, draws the panel again (or,
 * when FINAL, for the last time: it stays on screen). One write. */
static void s_tty_redraw(af_progress_t *self, bool final)
{
    if (self->mode != AF_PROGRESS_TTY || self->final)
        return;
    long long now = s_now();
    int width, height;
    s_size(&width, &height);
    if (width > 1000)
        width = 1000;
    /* up to 4 bytes a column, colour codes, two lines a row */
    size_t cap = self->pending_len + 64 + (size_t)AF_DISPLAY_ROWS * 2 * (4 * (size_t)width + 64);
    char *buf = malloc(cap);
    if (!buf)
        return;
    size_t len = 0;
    if (self->panel_lines > 0)
        len += (size_t)snprintf(buf, cap, "\033[%dA\r\033[J", self->panel_lines);
    if (self->pending_len) {
        memcpy(buf + len, self->pending, self->pending_len);
        len += self->pending_len;
        self->pending_len = 0;
    }
    int lines = 0;
    if (self->disp.n && (final || af_display_active(&self->disp) || self->panel_lines))
        len += af_display_render(&self->disp, now, width, final ? 0 : height, buf + len, cap - len,
                                 &lines);
    s_write_all(buf, len);
    free(buf);
    self->panel_lines = final ? 0 : lines;
    self->final = final;
    self->dirty = false;
    self->last_draw_ms = now;
}

/* Text (one line, no newline) to scroll above the panel. */
static void s_tty_line(af_progress_t *self, const char *text)
{
    if (self->final) {
        fprintf(stderr, "%s\n", text);
        return;
    }
    size_t n = strlen(text) + 1;
    if (self->pending_len + n > AF_PENDING_MAX)
        s_tty_redraw(self, false);
    if (self->pending_len + n > self->pending_cap) {
        size_t cap = self->pending_cap ? self->pending_cap : 8192;
        while (cap < self->pending_len + n)
            cap *= 2;
        char *p = realloc(self->pending, cap);
        if (!p)
            return;
        self->pending = p;
        self->pending_cap = cap;
    }
    memcpy(self->pending + self->pending_len, text, n - 1);
    self->pending[self->pending_len + n - 1] = '\n';
    self->pending_len += n;
    self->dirty = true;
}

void af_progress_tick(af_progress_t *self)
{
    if (!self || self->mode != AF_PROGRESS_TTY)
        return;
    bool resized = s_winch != 0;
    s_winch = 0;
    if (resized || (self->dirty && s_now() - self->last_draw_ms >= AF_PROGRESS_REFRESH_MS) ||
        (af_display_active(&self->disp) && s_now() - self->last_draw_ms >= 1000))
        s_tty_redraw(self, false); /* timers tick once a second even when idle */
}

/* ---- gha ---------------------------------------------------------------- */

static void s_random_hex(char *out, size_t bytes)
{
    unsigned char r[16] = {0};
    if (bytes > sizeof r)
        bytes = sizeof r;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, r, bytes) != (ssize_t)bytes)
            memset(r, 0, sizeof r);
        close(fd);
    }
    /* mixed with the clock in case /dev/urandom failed */
    unsigned long long t = (unsigned long long)s_now() ^ ((unsigned long long)getpid() << 16);
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i] ^ (unsigned char)(t >> (8 * (i % 8))));
}

/* "::CMD title=TITLE::DATA" on stderr, both escaped. */
static void s_gha_cmd(const char *cmd, const char *title, const char *data)
{
    char t[512], d[AF_TEXT_MAX * 2];
    af_gha_escape_prop(title ? title : "", t, sizeof t);
    af_gha_escape_data(data, d, sizeof d);
    if (title)
        fprintf(stderr, "::%s title=%s::%s\n", cmd, t, d);
    else
        fprintf(stderr, "::%s::%s\n", cmd, d);
    fflush(stderr);
}

static size_t s_row_index(af_progress_t *self, af_display_row_t *r)
{
    return (size_t)(r - self->disp.rows);
}

/* The attempt that just ended: its build log, folded into a group. The
 * output is wrapped in ::stop-commands:: so a build cannot issue
 * workflow commands of its own. */
static void s_gha_flush_log(af_progress_t *self, af_display_row_t *r, const char *title)
{
    size_t i = s_row_index(self, r);
    FILE *f = self->gha_log[i];
    char t[512];
    af_gha_escape_data(title, t, sizeof t);
    /* a fresh token each time: one printed earlier is no key to this one */
    snprintf(self->token, sizeof self->token, "archfarm-");
    s_random_hex(self->token + strlen(self->token), 12);
    fprintf(stderr, "::group::%s\n::stop-commands::%s\n", t, self->token);
    if (f) {
        rewind(f);
        char buf[8192];
        size_t n;
        fflush(stderr);
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            s_write_all(buf, n);
        fclose(f);
        self->gha_log[i] = NULL;
    } else {
        fputs("(no output)\n", stderr);
    }
    fprintf(stderr, "::%s::\n::endgroup::\n", self->token);
    fflush(stderr);
}

static void s_gha_log(af_progress_t *self, af_display_row_t *r, const char *clean)
{
    size_t i = s_row_index(self, r);
    if (!self->gha_log[i])
        self->gha_log[i] = tmpfile();
    if (self->gha_log[i])
        fprintf(self->gha_log[i], "%s\n", clean);
    snprintf(self->tail[i][self->tail_n[i] % AF_GHA_TAIL], sizeof self->tail[i][0], "%s", clean);
    self->tail_n[i]++;
}

/* Appends to the file named by $NAME (GITHUB_STEP_SUMMARY, GITHUB_OUTPUT). */
static FILE *s_gha_file(const char *name)
{
    const char *path = getenv(name);
    if (!path || !*path)
        return NULL;
    FILE *f = fopen(path, "a");
    if (!f)
        fprintf(stderr, "archfarm: warning: cannot append to $%s (%s): %s\n", name, path,
                strerror(errno));
    return f;
}

/* A Markdown table cell: sanitized, | and newlines escaped. */
static const char *s_md(const char *in, char *out, size_t cap)
{
    char clean[AF_TEXT_MAX];
    af_display_sanitize(in, clean, sizeof clean);
    size_t o = 0;
    for (const char *p = clean; *p && o + 3 < cap; p++) {
        if (*p == '|' || *p == '`' || *p == '<' || *p == '>' || *p == '*' || *p == '_' ||
            *p == '[' || *p == ']')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o] = '\0';
    return out;
}

/* ---- shared ------------------------------------------------------------- */

/* A line for plain, tty and gha: tty scrolls it above the panel. */
static void s_line(af_progress_t *self, const char *text)
{
    if (self->mode == AF_PROGRESS_TTY)
        s_tty_line(self, text);
    else {
        fprintf(stderr, "%s\n", text);
        fflush(stderr);
    }
}

static json_t *s_event(const char *type)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *o = json_object();
    json_object_set_new(o, "time", json_real((double)ts.tv_sec + ts.tv_nsec / 1e9));
    json_object_set_new(o, "type", json_string(type));
    return o;
}

static void s_emit(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
    json_decref(o);
}

/* jansson rejects invalid UTF-8: build output may hold anything */
static json_t *s_str(const char *s)
{
    if (!s)
        return json_string("");
    json_t *j = json_string(s);
    if (!j) {
        size_t n = strlen(s);
        char *copy = malloc(n + 1);
        if (!copy)
            return json_string("");
        for (size_t i = 0; i < n; i++)
            copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
        copy[n] = '\0';
        j = json_string(copy);
        free(copy);
    }
    return j ? j : json_string("");
}

int af_progress_mode_parse(const char *s, af_progress_mode_t *out)
{
    if (!strcmp(s, "auto"))
        *out = AF_PROGRESS_AUTO;
    else if (!strcmp(s, "plain"))
        *out = AF_PROGRESS_PLAIN;
    else if (!strcmp(s, "tty"))
        *out = AF_PROGRESS_TTY;
    else if (!strcmp(s, "json"))
        *out = AF_PROGRESS_JSON;
    else if (!strcmp(s, "gha"))
        *out = AF_PROGRESS_GHA;
    else
        return -1;
    return 0;
}

af_progress_t *af_progress_new(af_progress_mode_t mode)
{
    af_progress_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    const char *term = getenv("TERM");
    bool dumb = term && !strcmp(term, "dumb");
    if (mode == AF_PROGRESS_AUTO) {
        const char *gha = getenv("GITHUB_ACTIONS");
        if (gha && !strcmp(gha, "true"))
            mode = AF_PROGRESS_GHA;
        else
            mode = isatty(STDERR_FILENO) && !dumb ? AF_PROGRESS_TTY : AF_PROGRESS_PLAIN;
    }
    self->mode = mode;
    const char *nc = getenv("NO_COLOR");
    self->disp.color = mode == AF_PROGRESS_TTY && !(nc && *nc) && !dumb;
    if (mode == AF_PROGRESS_GHA) {
        self->tail = calloc(AF_DISPLAY_ROWS, sizeof *self->tail);
        if (!self->tail) {
            free(self);
            return NULL;
        }
    }
    if (mode == AF_PROGRESS_TTY) {
        struct sigaction sa = {0};
        sa.sa_handler = s_on_winch;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        self->winch_installed = sigaction(SIGWINCH, &sa, &self->old_winch) == 0;
    }
    return self;
}

void af_progress_destroy(af_progress_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_progress_t *self = *self_p;
    /* still live here means a path that printed an error below the panel
     * without a summary: draw the last panel below it, erase nothing */
    self->panel_lines = 0;
    s_tty_redraw(self, true);
    if (self->winch_installed)
        sigaction(SIGWINCH, &self->old_winch, NULL);
    for (size_t i = 0; i < AF_DISPLAY_ROWS; i++)
        if (self->gha_log[i])
            fclose(self->gha_log[i]);
    free(self->tail);
    free(self->pending);
    free(self);
    *self_p = NULL;
}

bool af_progress_is_json(const af_progress_t *self)
{
    return self->mode == AF_PROGRESS_JSON;
}

void af_progress_mask(af_progress_t *self, const char *secret)
{
    if (self->mode != AF_PROGRESS_GHA || !secret || !*secret)
        return;
    char d[AF_TEXT_MAX];
    af_gha_escape_data(secret, d, sizeof d);
    fprintf(stderr, "::add-mask::%s\n", d);
    fflush(stderr);
}

void af_progress_bytes(af_progress_t *self, const char *platform, const char *node, uint64_t done,
                       uint64_t total)
{
    if (self->mode != AF_PROGRESS_TTY)
        return;
    long long now = s_now();
    af_display_row_t *r = af_display_row(&self->disp, platform, now);
    if (!r)
        return;
    if (strcmp(r->state, "sending context"))
        af_display_set_state(r, node, "sending context", now);
    af_display_set_bytes(r, done, total, now);
    self->dirty = true;
}

void af_progress_info(af_progress_t *self, const char *fmt, ...)
{
    if (self->mode == AF_PROGRESS_QUIET)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (self->mode == AF_PROGRESS_JSON) {
        json_t *o = s_event("info");
        json_object_set_new(o, "message", s_str(msg));
        s_emit(o);
        return;
    }
    char clean[AF_TEXT_MAX], text[AF_TEXT_MAX + 16];
    af_display_sanitize(msg, clean, sizeof clean);
    snprintf(text, sizeof text, "[archfarm] %s", clean);
    s_line(self, text);
    s_tty_redraw(self, false);
}

void af_progress_status(af_progress_t *self, const char *platform, const char *node,
                        const char *state, const char *detail)
{
    if (self->mode == AF_PROGRESS_QUIET)
        return;
    if (self->mode == AF_PROGRESS_JSON) {
        json_t *o = s_event("status");
        json_object_set_new(o, "platform", s_str(platform));
        json_object_set_new(o, "node", s_str(node));
        json_object_set_new(o, "state", s_str(state));
        json_object_set_new(o, "detail", s_str(detail));
        s_emit(o);
        return;
    }
    char cp[64], cn[80], cs[64], cd[AF_TEXT_MAX], text[AF_TEXT_MAX + 256];
    af_display_sanitize(platform, cp, sizeof cp);
    af_display_sanitize(node, cn, sizeof cn);
    af_display_sanitize(state, cs, sizeof cs);
    af_display_sanitize(detail, cd, sizeof cd);
    if (cd[0])
        snprintf(text, sizeof text, "[%s %s] %s: %s", cp, cn, cs, cd);
    else
        snprintf(text, sizeof text, "[%s %s] %s", cp, cn, cs);
    long long now = s_now();
    af_display_row_t *r = af_display_row(&self->disp, platform, now);
    if (self->mode == AF_PROGRESS_GHA && r && !strcmp(state, "retrying")) {
        char title[200];
        snprintf(title, sizeof title, "%s on %s", cp, r->node[0] ? r->node : cn);
        s_gha_cmd("warning", title, text);
        self->tail_n[s_row_index(self, r)] = 0; /* the next attempt's log */
    }
    if (r)
        af_display_set_state(r, node, state, now);
    if (self->mode == AF_PROGRESS_TTY) {
        /* the panel shows states; only what explains a change scrolls */
        self->dirty = true;
        if (!strcmp(state, "retrying"))
            s_tty_line(self, text);
        return;
    }
    s_line(self, text);
}

void af_progress_log(af_progress_t *self, const char *platform, const char *node,
                     const char *stream, const char *line)
{
    if (self->mode == AF_PROGRESS_QUIET)
        return;
    if (self->mode == AF_PROGRESS_JSON) {
        json_t *o = s_event("log");
        json_object_set_new(o, "platform", s_str(platform));
        json_object_set_new(o, "node", s_str(node));
        json_object_set_new(o, "stream", s_str(stream));
        json_object_set_new(o, "line", s_str(line));
        s_emit(o);
        return;
    }
    char cp[64], cn[80], cl[AF_TEXT_MAX], text[AF_TEXT_MAX + 160];
    af_display_sanitize(platform, cp, sizeof cp);
    af_display_sanitize(node, cn, sizeof cn);
    af_display_sanitize(line, cl, sizeof cl);
    af_display_row_t *r = af_display_row(&self->disp, platform, s_now());
    if (self->mode == AF_PROGRESS_GHA) {
        if (r)
            s_gha_log(self, r, cl);
        return;
    }
    if (r && self->mode == AF_PROGRESS_TTY)
        af_display_set_line(r, line);
    snprintf(text, sizeof text, "[%s %s] %s", cp, cn, cl);
    s_line(self, text);
}

static json_t *s_result_json(const char *type, const af_progress_result_t *r)
{
    json_t *o = s_event(type);
    json_object_set_new(o, "platform", s_str(r->platform));
    json_object_set_new(o, "node", s_str(r->node));
    json_object_set_new(o, "job", s_str(r->job));
    json_object_set_new(o, "attempt", json_integer(r->attempt));
    json_object_set_new(o, "ok", json_boolean(r->ok));
    json_object_set_new(o, "digest", s_str(r->digest));
    json_object_set_new(o, "failure", s_str(r->failure));
    json_object_set_new(o, "exit_code", json_integer(r->exit_code));
    json_object_set_new(o, "message", s_str(r->message));
    json_object_set_new(o, "seconds", json_real(r->seconds));
    return o;
}

/* "FAILED (build, exit status 3)" / "FAILED (infra)" */
static void s_failure_text(const af_progress_result_t *r, char *out, size_t cap)
{
    if (r->exit_code >= 0 && !strcmp(r->failure, "build"))
        snprintf(out, cap, "FAILED (build, exit status %d)", r->exit_code);
    else
        snprintf(out, cap, "FAILED (%s)", r->failure[0] ? r->failure : "failed");
}

void af_progress_result(af_progress_t *self, const af_progress_result_t *r)
{
    if (self->mode == AF_PROGRESS_QUIET)
        return;
    if (self->mode == AF_PROGRESS_JSON) {
        s_emit(s_result_json("result", r));
        return;
    }
    char cp[64], cn[80], cm[AF_TEXT_MAX], cdg[160], why[64], text[AF_TEXT_MAX + 512];
    af_display_sanitize(r->platform, cp, sizeof cp);
    af_display_sanitize(r->node, cn, sizeof cn);
    af_display_sanitize(r->message, cm, sizeof cm);
    af_display_sanitize(r->digest, cdg, sizeof cdg);
    s_failure_text(r, why, sizeof why);
    if (r->ok)
        snprintf(text, sizeof text, "[%s %s] done %s in %.1fs", cp, cn, cdg, r->seconds);
    else
        snprintf(text, sizeof text, "[%s %s] %s after %.1fs: %s", cp, cn, why, r->seconds, cm);
    af_display_row_t *row = af_display_row(&self->disp, r->platform, s_now());
    if (row) {
        char reason[AF_TEXT_MAX + 64];
        snprintf(reason, sizeof reason, "%s: %s", why, cm);
        af_display_set_state(row, r->node, r->ok ? "done" : "FAILED", s_now());
        af_display_set_result(row, r->ok, r->digest, reason, s_now());
    }
    if (self->mode == AF_PROGRESS_GHA && row) {
        char title[200];
        if (r->attempt > 1)
            snprintf(title, sizeof title, "%s on %s (attempt %u)", cp, cn, r->attempt);
        else
            snprintf(title, sizeof title, "%s on %s", cp, cn);
        s_gha_flush_log(self, row, title);
    }
    s_line(self, text);
    s_tty_redraw(self, false);
}

void af_progress_index(af_progress_t *self, const char *digest, const char *media_type,
                       uint64_t size, const char *tags, bool pushed)
{
    if (self->mode == AF_PROGRESS_QUIET)
        return;
    if (self->mode == AF_PROGRESS_JSON) {
        json_t *o = s_event("index");
        json_object_set_new(o, "digest", s_str(digest));
        json_object_set_new(o, "media_type", s_str(media_type));
        json_object_set_new(o, "size", json_integer((json_int_t)size));
        json_object_set_new(o, "tags", s_str(tags));
        json_object_set_new(o, "pushed", json_boolean(pushed));
        s_emit(o);
        return;
    }
    s_tty_redraw(self, true);
    char text[AF_TEXT_MAX];
    if (pushed)
        snprintf(text, sizeof text, "[archfarm] index %s pushed to %s", digest, tags);
    else
        snprintf(text, sizeof text, "[archfarm] index %s (not pushed: no --push)", digest);
    s_line(self, text);
    if (self->mode != AF_PROGRESS_GHA)
        return;
    FILE *sum = s_gha_file("GITHUB_STEP_SUMMARY");
    if (sum) {
        char md[AF_TEXT_MAX];
        fprintf(sum, "\n**Index** `%s` (%s)\n\n", digest, pushed ? "pushed" : "not pushed");
        if (pushed && tags && *tags) {
            char copy[AF_TEXT_MAX];
            snprintf(copy, sizeof copy, "%s", tags);
            fprintf(sum, "**Tags**\n\n");
            for (char *save = NULL, *t = strtok_r(copy, ",", &save); t;
                 t = strtok_r(NULL, ",", &save))
                fprintf(sum, "- %s\n", s_md(t, md, sizeof md));
        }
        fclose(sum);
    }
    FILE *out = s_gha_file("GITHUB_OUTPUT");
    if (out) {
        /* docker/build-push-action's outputs: digest, imageid, metadata
         * (the buildx metadata keys, as JSON in the multiline form) */
        json_t *m = json_object();
        af_progress_image_keys(m, media_type, digest, size);
        json_object_set_new(m, "image.name", s_str(tags));
        json_object_set_new(m, "archfarm.pushed", json_boolean(pushed));
        char *js = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(m);
        char delim[48];
        snprintf(delim, sizeof delim, "ghadelimiter_");
        s_random_hex(delim + strlen(delim), 16);
        fprintf(out, "digest=%s\nimageid=%s\nmetadata<<%s\n%s\n%s\n", digest, digest, delim,
                js ? js : "{}", delim);
        free(js);
        fclose(out);
    }
}

void af_progress_image_keys(json_t *obj, const char *media_type, const char *digest, uint64_t size)
{
    json_t *desc = json_object();
    json_object_set_new(desc, "mediaType", s_str(media_type));
    json_object_set_new(desc, "digest", s_str(digest));
    json_object_set_new(desc, "size", json_integer((json_int_t)size));
    json_object_set_new(obj, "containerimage.digest", s_str(digest));
    json_object_set_new(obj, "containerimage.descriptor", desc);
}

/* The summary as one JSON event. */
static void s_summary_json(const af_progress_result_t *rows, size_t n)
{
    json_t *o = s_event("summary");
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *r = s_result_json("slice", &rows[i]);
        json_object_del(r, "time");
        json_object_del(r, "type");
        json_object_set_new(r, "context_bytes_sent",
                            json_integer((json_int_t)rows[i].context_bytes_sent));
        json_object_set_new(r, "pushed_bytes",
                            rows[i].pushed_bytes >= 0
                                ? json_integer((json_int_t)rows[i].pushed_bytes)
                                : json_null());
        json_array_append_new(arr, r);
    }
    json_object_set_new(o, "slices", arr);
    s_emit(o);
}

/* GitHub Actions: an ::error for failed row R (display-safe platform CP,
 * node CN and reason CM) with the last lines of its log. */
static void s_summary_gha_error(af_progress_t *self, const af_progress_result_t *r, const char *cp,
                                const char *cn, const char *cm)
{
    char title[200], why[64], msg[AF_TEXT_MAX * 2];
    snprintf(title, sizeof title, "%s on %s", cp, cn);
    s_failure_text(r, why, sizeof why);
    af_strbuf_t sb;
    af_strbuf_init(&sb, msg, sizeof msg);
    af_strbuf_printf(&sb, "%s: %s", why, cm);
    af_display_t *d = &self->disp;
    for (size_t k = 0; k < d->n; k++) {
        if (strcmp(d->rows[k].platform, cp))
            continue;
        size_t total = self->tail_n[k], first = total > AF_GHA_TAIL ? total - AF_GHA_TAIL : 0;
        if (total)
            af_strbuf_printf(&sb, "\nlast %zu log lines:", total - first);
        for (size_t j = first; j < total; j++)
            af_strbuf_printf(&sb, "\n%s", self->tail[k][j % AF_GHA_TAIL]);
    }
    s_gha_cmd("error", title, msg);
}

/* One row of the table (and of the step summary file SUM, may be NULL). */
static void s_summary_row(af_progress_t *self, const af_progress_result_t *r, FILE *sum)
{
    char text[AF_TEXT_MAX + 512];
    char result[64], cp[64], cn[80], cm[AF_TEXT_MAX];
    if (r->ok)
        snprintf(result, sizeof result, "ok");
    else if (!strcmp(r->failure, "build") && r->exit_code >= 0)
        snprintf(result, sizeof result, "build(%d)", r->exit_code);
    else
        snprintf(result, sizeof result, "%s", r->failure[0] ? r->failure : "failed");
    af_display_sanitize(r->platform, cp, sizeof cp);
    af_display_sanitize(r->node[0] ? r->node : "-", cn, sizeof cn);
    af_display_sanitize(r->ok ? r->digest : r->message, cm, sizeof cm);
    char sent[32], pushed[32];
    af_cli_bytes(r->context_bytes_sent, sent, sizeof sent);
    if (r->pushed_bytes >= 0)
        af_cli_bytes((unsigned long long)r->pushed_bytes, pushed, sizeof pushed);
    else
        snprintf(pushed, sizeof pushed, "-");
    snprintf(text, sizeof text, "%-20s %-16s %-10s %8.1f %10s %10s  %s", cp, cn, result, r->seconds,
             sent, pushed, cm);
    s_line(self, text);
    if (sum) {
        char a[128], b[160], c[AF_TEXT_MAX * 2];
        fprintf(sum, "| %s | %s | %s | %.1f | %s | %s | %s |\n", s_md(r->platform, a, sizeof a),
                s_md(r->node[0] ? r->node : "-", b, sizeof b), r->ok ? "✅ ok" : result, r->seconds,
                sent, pushed, r->ok ? r->digest : s_md(r->message, c, sizeof c));
    }
    if (self->mode == AF_PROGRESS_GHA && !r->ok && strcmp(r->failure, "cancelled"))
        s_summary_gha_error(self, r, cp, cn, cm);
}

void af_progress_summary(af_progress_t *self, const af_progress_result_t *rows, size_t n)
{
    if (self->mode == AF_PROGRESS_QUIET)
        return;
    if (self->mode == AF_PROGRESS_JSON) {
        s_summary_json(rows, n);
        return;
    }
    s_tty_redraw(self, true); /* the panel stays above the table */
    char text[AF_TEXT_MAX + 512];
    snprintf(text, sizeof text, "\n%-20s %-16s %-10s %8s %10s %10s  %s", "PLATFORM", "NODE",
             "RESULT", "SECONDS", "SENT", "PUSHED", "DIGEST / REASON");
    s_line(self, text);
    FILE *sum = self->mode == AF_PROGRESS_GHA ? s_gha_file("GITHUB_STEP_SUMMARY") : NULL;
    if (sum)
        fputs("### archfarm build\n\n| Platform | Node | Result | Seconds | Sent | Pushed | Digest "
              "|\n"
              "| --- | --- | --- | ---: | ---: | ---: | --- |\n",
              sum);
    bool failed = false;
    for (size_t i = 0; i < n; i++) {
        s_summary_row(self, &rows[i], sum);
        failed = failed || !rows[i].ok;
    }
    if (sum) {
        if (failed)
            fputs("\n**Build failed**: no tag was written.\n", sum);
        fclose(sum);
    }
}
