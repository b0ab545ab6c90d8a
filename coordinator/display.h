/* display.h -- the pure half of `archfarm build`'s progress output: state
 * in, bytes out, no I/O (progress.c does the writing). Unit tested in
 * tests/unit/test_coord_display.c.
 *
 * - af_display_sanitize: text from a build (log lines, messages, node
 *   replies) made safe for a terminal: no C0/C1 control character, DEL or
 *   invalid UTF-8 reaches it raw (they become visible \xNN escapes), as
 *   docs/protocol.md requires of LOG's `line`.
 * - af_gha_escape_data / af_gha_escape_prop: GitHub Actions workflow
 *   command escaping (%, \r, \n; properties also : and ,).
 * - af_display_t + af_display_render: the live tty panel, one row per
 *   platform (node, state, elapsed time, a transfer bar with bytes and
 *   rate, the latest log line), fitted to a width. */
#ifndef AF_DISPLAY_H
#define AF_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AF_DISPLAY_ROWS 64

/* Copies IN to OUT (capacity CAP, always NUL-terminated when CAP > 0),
 * replacing every byte that could drive a terminal -- C0 controls but
 * TAB, DEL, the C1 controls U+0080..U+009F, bytes that are not valid
 * UTF-8 -- with the four characters "\xNN"; TAB becomes one space.
 * Truncates at a character boundary. Returns the length written. */
size_t af_display_sanitize(const char *in, char *out, size_t cap);

/* Workflow-command message data: % -> %25, \r -> %0D, \n -> %0A. Returns
 * the length written (OUT always NUL-terminated when CAP > 0; truncates
 * before an escape, never inside one). */
size_t af_gha_escape_data(const char *in, char *out, size_t cap);

/* Workflow-command property value: the data escapes plus : -> %3A and
 * , -> %2C. */
size_t af_gha_escape_prop(const char *in, char *out, size_t cap);

typedef enum {
    AF_ROW_ACTIVE = 0,
    AF_ROW_OK,
    AF_ROW_FAILED,
} af_row_outcome_t;

/* One platform's row. Strings are owned copies (already sanitized by the
 * af_display_set_* functions). */
typedef struct {
    char platform[48];
    char node[64];
    char state[48];
    char last_line[256];
    char digest[80];
    char reason[256];
    af_row_outcome_t outcome;
    long long started_ms, ended_ms; /* monotonic; ended 0 while active */
    uint64_t bytes_done, bytes_total;
    long long bytes_started_ms;
} af_display_row_t;

/* The panel's state: plain value, no heap. */
typedef struct {
    af_display_row_t rows[AF_DISPLAY_ROWS];
    size_t n;
    bool color;
} af_display_t;

/* The row of PLATFORM, added (started at NOW_MS) when new; NULL when the
 * panel is full. Borrowed. */
af_display_row_t *af_display_row(af_display_t *d, const char *platform, long long now_ms);

/* State changes. A "retrying" attempt on another node restarts the row. */
void af_display_set_state(af_display_row_t *r, const char *node, const char *state,
                          long long now_ms);
void af_display_set_line(af_display_row_t *r, const char *line);
void af_display_set_bytes(af_display_row_t *r, uint64_t done, uint64_t total, long long now_ms);
void af_display_set_result(af_display_row_t *r, bool ok, const char *digest, const char *reason,
                           long long now_ms);

/* True while some row is active. */
bool af_display_active(const af_display_t *d);

/* Renders the panel for a terminal WIDTH columns wide and HEIGHT lines
 * high (0: unlimited) at NOW_MS into OUT (capacity CAP, NUL-terminated):
 * each row is one line, plus an indented second line (the latest log line
 * while active, the digest when done, the reason when failed). Every line
 * ends in "\n" and holds at most WIDTH - 1 columns, so it never wraps; at
 * most HEIGHT - 1 lines (second lines are dropped first, then the last
 * rows give way to a "... N more" line), so cursor-up can reach the top.
 * *N_LINES gets the line count. Returns the length. */
size_t af_display_render(const af_display_t *d, long long now_ms, int width, int height, char *out,
                         size_t cap, int *n_lines);

/* "12.0 MiB" style; returns OUT. */
const char *af_display_bytes(uint64_t n, char *out, size_t cap);

#endif
