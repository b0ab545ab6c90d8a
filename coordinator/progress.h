/* progress.h -- what `archfarm build` tells the user while it runs.
 *
 * plain: one line per event on stderr,
 *   "[archfarm] text"                  for the build as a whole
 *   "[linux/arm64 node2] text"         for a slice's state changes and its
 *                                      build output lines
 * tty: build output and messages scroll on stderr above a live panel (one
 *   row per platform: node, state, elapsed time, a transfer bar, the
 *   latest log line; display.h renders it), redrawn in place with cursor
 *   movement at most every AF_PROGRESS_REFRESH_MS (af_progress_tick, from
 *   the build's event loop) and on SIGWINCH; finished rows stay with their
 *   digest or reason. No colour when NO_COLOR is set or TERM=dumb.
 * gha: GitHub Actions: plain lines, each attempt's build log inside
 *   ::group::PLATFORM on NODE, ::warning for a retried attempt, ::error
 *   for a failed slice, ::add-mask:: for secrets, a Markdown table in
 *   $GITHUB_STEP_SUMMARY and digest/imageid/metadata in $GITHUB_OUTPUT.
 * json: one JSON object per line on stdout:
 *   {"time":..., "type":"info"|"status"|"log"|"result"|"index", ...}
 * quiet: nothing (errors still go to stderr through af_cli_error).
 * auto = gha when GITHUB_ACTIONS=true, else tty when stderr is a terminal
 *   and TERM is not "dumb", else plain.
 * Every text that came from a node or a build (log lines, states,
 * messages) is passed through af_display_sanitize before it reaches a
 * terminal or a log (JSON escapes it by itself).
 * The final summary table goes to stderr in plain, tty and gha modes. */
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
    AF_PROGRESS_GHA,
    AF_PROGRESS_QUIET,
} af_progress_mode_t;

#define AF_PROGRESS_REFRESH_MS 100 /* tty: at most 10 redraws a second */

typedef struct af_progress af_progress_t;

/* "auto" "plain" "tty" "json" "gha" -> mode. 0 or -1. */
int af_progress_mode_parse(const char *s, af_progress_mode_t *out);

/* New reporter (auto resolves to tty or plain). Caller owns. */
af_progress_t *af_progress_new(af_progress_mode_t mode);
void af_progress_destroy(af_progress_t **self_p);

bool af_progress_is_json(const af_progress_t *self);

/* gha: registers SECRET with ::add-mask:: so the runner hides it wherever
 * it appears later; other modes: nothing. Call before any output that
 * could hold it. SECRET is not kept. */
void af_progress_mask(af_progress_t *self, const char *secret);

/* tty: redraws the panel when it changed and AF_PROGRESS_REFRESH_MS passed
 * (or the terminal was resized). Never blocks on anything but the write
 * to stderr. Other modes: nothing. */
void af_progress_tick(af_progress_t *self);

/* DONE of TOTAL bytes of the context were sent to the slice's node (tty
 * draws a bar with the rate; other modes keep their occasional status
 * lines). */
void af_progress_bytes(af_progress_t *self, const char *platform, const char *node, uint64_t done,
                       uint64_t total);

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
    /* summary only (af_progress_summary): */
    uint64_t context_bytes_sent; /* over every attempt */
    int64_t pushed_bytes;        /* -1 unknown */
} af_progress_result_t;

void af_progress_result(af_progress_t *self, const af_progress_result_t *r);

/* The index: DIGEST, SIZE, TAGS (comma list, may be ""), whether pushed. */
void af_progress_index(af_progress_t *self, const char *digest, const char *media_type,
                       uint64_t size, const char *tags, bool pushed);

/* Sets buildx's "containerimage.digest" and "containerimage.descriptor"
 * keys for the index (MEDIA_TYPE, DIGEST, SIZE) on OBJ, a jansson object
 * (borrowed); the --metadata-file and the GitHub "metadata" output share
 * them. */
struct json_t;
void af_progress_image_keys(struct json_t *obj, const char *media_type, const char *digest,
                            uint64_t size);

/* Summary table (stderr in plain mode; a "summary" event in json). */
void af_progress_summary(af_progress_t *self, const af_progress_result_t *rows, size_t n);

#endif
