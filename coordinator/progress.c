/* progress.c -- build progress output (see progress.h): prefixed lines on
 * stderr, or JSON events on stdout built with jansson. This is CLI output
 * code, so it prints directly. */
#include "progress.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AF_PROGRESS_SLOTS 64

struct af_progress {
    af_progress_mode_t mode; /* PLAIN, TTY or JSON after resolution */
    /* tty: the state of each platform, shown on a status line that is
     * redrawn below the scrolling output */
    char platform[AF_PROGRESS_SLOTS][48];
    char state[AF_PROGRESS_SLOTS][32];
    size_t n;
    bool shown;
};

/* tty: take the status line away before printing a normal line */
static void s_tty_clear(af_progress_t *self)
{
    if (self->mode == AF_PROGRESS_TTY && self->shown) {
        fputs("\r\033[K", stderr);
        self->shown = false;
    }
}

/* tty: draw the status line again (no newline) */
static void s_tty_draw(af_progress_t *self)
{
    if (self->mode != AF_PROGRESS_TTY || !self->n)
        return;
    /* once every slice has ended, the line would only get in the way of
     * the registry work and the summary */
    bool active = false;
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->state[i], "done") && strcmp(self->state[i], "FAILED") &&
            strcmp(self->state[i], "verified"))
            active = true;
    if (!active)
        return;
    char line[512];
    size_t off = 0;
    for (size_t i = 0; i < self->n && off < sizeof line; i++)
        off += snprintf(line + off, sizeof line - off, "%s%s: %s", i ? " | " : "",
                        self->platform[i], self->state[i]);
    fprintf(stderr, "\033[7m%.*s\033[0m", 200, line);
    fflush(stderr);
    self->shown = true;
}

static void s_tty_state(af_progress_t *self, const char *platform, const char *state)
{
    if (self->mode != AF_PROGRESS_TTY)
        return;
    size_t i = 0;
    while (i < self->n && strcmp(self->platform[i], platform))
        i++;
    if (i == self->n) {
        if (self->n >= AF_PROGRESS_SLOTS)
            return;
        snprintf(self->platform[i], sizeof self->platform[i], "%s", platform);
        self->n++;
    }
    snprintf(self->state[i], sizeof self->state[i], "%s", state);
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
    else
        return -1;
    return 0;
}

af_progress_t *af_progress_new(af_progress_mode_t mode)
{
    af_progress_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (mode == AF_PROGRESS_AUTO)
        mode = isatty(fileno(stderr)) ? AF_PROGRESS_TTY : AF_PROGRESS_PLAIN;
    self->mode = mode;
    return self;
}

void af_progress_destroy(af_progress_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_tty_clear(*self_p);
    free(*self_p);
    *self_p = NULL;
}

bool af_progress_is_json(const af_progress_t *self)
{
    return self->mode == AF_PROGRESS_JSON;
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

void af_progress_info(af_progress_t *self, const char *fmt, ...)
{
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
    s_tty_clear(self);
    fprintf(stderr, "[archfarm] %s\n", msg);
    s_tty_draw(self);
}

void af_progress_status(af_progress_t *self, const char *platform, const char *node,
                        const char *state, const char *detail)
{
    if (self->mode == AF_PROGRESS_JSON) {
        json_t *o = s_event("status");
        json_object_set_new(o, "platform", s_str(platform));
        json_object_set_new(o, "node", s_str(node));
        json_object_set_new(o, "state", s_str(state));
        json_object_set_new(o, "detail", s_str(detail));
        s_emit(o);
        return;
    }
    s_tty_clear(self);
    if (detail && *detail)
        fprintf(stderr, "[%s %s] %s: %s\n", platform, node, state, detail);
    else
        fprintf(stderr, "[%s %s] %s\n", platform, node, state);
    s_tty_state(self, platform, state);
    s_tty_draw(self);
}

void af_progress_log(af_progress_t *self, const char *platform, const char *node,
                     const char *stream, const char *line)
{
    if (self->mode == AF_PROGRESS_JSON) {
        json_t *o = s_event("log");
        json_object_set_new(o, "platform", s_str(platform));
        json_object_set_new(o, "node", s_str(node));
        json_object_set_new(o, "stream", s_str(stream));
        json_object_set_new(o, "line", s_str(line));
        s_emit(o);
        return;
    }
    s_tty_clear(self);
    fprintf(stderr, "[%s %s] %s\n", platform, node, line);
    s_tty_draw(self);
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

void af_progress_result(af_progress_t *self, const af_progress_result_t *r)
{
    if (self->mode == AF_PROGRESS_JSON) {
        s_emit(s_result_json("result", r));
        return;
    }
    s_tty_clear(self);
    s_tty_state(self, r->platform, r->ok ? "done" : "FAILED");
    if (r->ok)
        fprintf(stderr, "[%s %s] done %s in %.1fs\n", r->platform, r->node, r->digest, r->seconds);
    else if (r->exit_code >= 0 && !strcmp(r->failure, "build"))
        fprintf(stderr, "[%s %s] FAILED (build, exit status %d) after %.1fs: %s\n", r->platform,
                r->node, r->exit_code, r->seconds, r->message);
    else
        fprintf(stderr, "[%s %s] FAILED (%s) after %.1fs: %s\n", r->platform, r->node, r->failure,
                r->seconds, r->message);
    s_tty_draw(self);
}

void af_progress_index(af_progress_t *self, const char *digest, const char *media_type,
                       uint64_t size, const char *tags, bool pushed)
{
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
    s_tty_clear(self);
    if (pushed)
        fprintf(stderr, "[archfarm] index %s pushed to %s\n", digest, tags);
    else
        fprintf(stderr, "[archfarm] index %s (not pushed: no --push)\n", digest);
}

void af_progress_summary(af_progress_t *self, const af_progress_result_t *rows, size_t n)
{
    if (self->mode == AF_PROGRESS_JSON) {
        json_t *o = s_event("summary");
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *r = s_result_json("slice", &rows[i]);
            json_object_del(r, "time");
            json_object_del(r, "type");
            json_array_append_new(arr, r);
        }
        json_object_set_new(o, "slices", arr);
        s_emit(o);
        return;
    }
    s_tty_clear(self);
    self->n = 0; /* the table replaces the status line */
    fprintf(stderr, "\n%-20s %-16s %-10s %8s  %s\n", "PLATFORM", "NODE", "RESULT", "SECONDS",
            "DIGEST / REASON");
    for (size_t i = 0; i < n; i++) {
        const af_progress_result_t *r = &rows[i];
        char result[32];
        if (r->ok)
            snprintf(result, sizeof result, "ok");
        else if (!strcmp(r->failure, "build") && r->exit_code >= 0)
            snprintf(result, sizeof result, "build(%d)", r->exit_code);
        else
            snprintf(result, sizeof result, "%s", r->failure[0] ? r->failure : "failed");
        fprintf(stderr, "%-20s %-16s %-10s %8.1f  %s\n", r->platform, r->node[0] ? r->node : "-",
                result, r->seconds, r->ok ? r->digest : r->message);
    }
}
