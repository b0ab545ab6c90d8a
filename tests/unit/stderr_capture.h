/* stderr_capture.h -- for unit tests (include after <cmocka.h>): what the
 * code between s_capture_begin() and s_capture_end() wrote to stderr, read
 * back from a temp file the stderr descriptor pointed at meanwhile. */
#ifndef AF_TEST_STDERR_CAPTURE_H
#define AF_TEST_STDERR_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int fd, saved;
} s_capture_t;

static void s_capture_begin(s_capture_t *c)
{
    char path[] = "/tmp/af_test_stderr.XXXXXX";
    c->fd = mkstemp(path);
    assert_true(c->fd >= 0);
    unlink(path);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr; OUT (capacity CAP) gets the text, NUL-terminated. */
static void s_capture_end(s_capture_t *c, char *out, size_t cap)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    memset(out, 0, cap);
    assert_true(pread(c->fd, out, cap - 1, 0) > 0);
    close(c->fd);
}

#endif
