/* error.h -- archfarm's error codes and the error record every verb fills.
 *
 * Verbs return 0 or a negative AF_ERR_* code. Where the caller needs to
 * know *what* went wrong (a file:line:col, a node name, a registry URL and
 * HTTP status) the verb also takes an optional af_err_t and writes a
 * one-line, user-facing message into it. Messages never contain secrets. */
#ifndef AF_ERROR_H
#define AF_ERROR_H

#include <stddef.h>

#define AF_ERRMSG_MAX 1024

typedef enum {
    AF_OK = 0,
    AF_ERR_NOMEM = -1,       /* out of memory */
    AF_ERR_INVAL = -2,       /* invalid argument or value */
    AF_ERR_IO = -3,          /* file or pipe I/O failed */
    AF_ERR_PARSE = -4,       /* malformed input (YAML, JSON, msgpack, tar) */
    AF_ERR_PROTO = -5,       /* protocol violation */
    AF_ERR_TOOBIG = -6,      /* a named limit was exceeded */
    AF_ERR_DIGEST = -7,      /* content does not match its digest */
    AF_ERR_HTTP = -8,        /* unexpected HTTP status from a registry */
    AF_ERR_NOTFOUND = -9,    /* no such file, node, manifest, blob */
    AF_ERR_UNSAFE = -10,     /* input tried to escape its sandbox */
    AF_ERR_TIMEOUT = -11,    /* a deadline passed */
    AF_ERR_CHILD = -12,      /* a child process failed */
    AF_ERR_UNSUPPORTED = -13,/* valid, but not supported by this build */
    AF_ERR_AUTH = -14,       /* authentication or authorisation refused */
    AF_ERR_CANCELLED = -15,  /* cancelled by the user or the peer */
    AF_ERR_NET = -16,        /* network unreachable, connection refused */
    AF_ERR_STATE = -17,      /* operation not valid in the current state */
} af_error_code_t;

/* One error record. code is 0 until af_err_set() is called. */
typedef struct {
    int code;
    char msg[AF_ERRMSG_MAX];
} af_err_t;

/* Static text for an AF_ERR_* code. Cannot fail; unknown codes give
 * "unknown error". */
const char *af_strerror(int code);

/* Clears err (NULL allowed). */
void af_err_clear(af_err_t *err);

/* Formats a message into err (NULL allowed) and returns code, so callers
 * can write `return af_err_set(err, AF_ERR_PARSE, "%s:%d:%d: ...", ...)`.
 * If err already holds a message it is replaced. */
int af_err_set(af_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with "PREFIX: " (context as the error
 * bubbles up). Returns err->code, or code if err is NULL. */
int af_err_prefix(af_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The message if one was set, else af_strerror(code). Never NULL. */
const char *af_err_msg(const af_err_t *err, int code);

#endif
