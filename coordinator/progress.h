/* progress.h -- what `archfarm build` tells the user while it runs.
 *
 * plain: one line per event on stderr,
 *   "[archfarm] text"                  for the build as a whole
 *   "[linux/arm64 node2] text"         for a slice's state changes and its
 *                                      build output lines
 * tty: the same lines, plus a status line (each platform's state) kept
 *   at the bottom of the terminal; auto = tty when stderr is a terminal,
 *   else plain.
 * json: one JSON object per line on stdout:
 *   {"time":..., "type":"info"|"status"|"log"|"result"|"index", ...}
 * The final summary table goes to stderr in plain mode. */
#ifndef AF_PROGRESS_H
#define AF_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    AF_PROGRESS_AUTO = 0,
    AF_PROGRESS_PLAIN,
    AF_PROGRESS_TTY,
    AF_PROGRESS_JSON,
} af_progress_mode_t;

typedef struct af_progress af_progress_t;

/* "auto" "plain" "tty" "json" -> mode. 0 or -1. */
int af_progress_mode_parse(const char *s, af_progress_mode_t *out);

/* New reporter (auto resolves to tty or plain). Caller owns. */
af_progress_t *af_progress_new(af_progress_mode_t mode);
void af_progress_destroy(af_progress_t **self_p);

bool af_progress_is_json(const af_progress_t *self);

/* A build-wide message. */
void af_progress_info(af_progress_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A slice changed state (queued, receiving, running, pushing, ...). DETAIL
 * may be "" or NULL. */
void af_progress_status(af_progress_t *self, const char *platform, const char *node,
                        const char *state, const char *detail);

/* One line of build output (STREAM stdout|stderr|agent). */
void af_progress_log(af_progress_t *self, const char *platform, const char *node,
                     const char *stream, const char *line);

/* A slice finished. */
typedef struct {
    const char *platform, *node, *job;
    uint32_t attempt;
    bool ok;
    const char *digest;  /* "" when failed */
    const char *failure; /* "" | build | infra | cancelled | timeout | verify */
    int exit_code;
    const char *message;
    double seconds;
} af_progress_result_t;

void af_progress_result(af_progress_t *self, const af_progress_result_t *r);

/* The index: DIGEST, SIZE, TAGS (comma list, may be ""), whether pushed. */
void af_progress_index(af_progress_t *self, const char *digest, const char *media_type,
                       uint64_t size, const char *tags, bool pushed);

/* Summary table (stderr in plain mode; a "summary" event in json). */
void af_progress_summary(af_progress_t *self, const af_progress_result_t *rows, size_t n);

#endif
