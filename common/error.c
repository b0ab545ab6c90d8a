/* error.c -- AF_ERR_* names and the af_err_t record. Used by everything. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *af_strerror(int code)
{
    switch (code) {
    case AF_OK: return "success";
    case AF_ERR_NOMEM: return "out of memory";
    case AF_ERR_INVAL: return "invalid value";
    case AF_ERR_IO: return "I/O error";
    case AF_ERR_PARSE: return "malformed input";
    case AF_ERR_PROTO: return "protocol error";
    case AF_ERR_TOOBIG: return "limit exceeded";
    case AF_ERR_DIGEST: return "digest mismatch";
    case AF_ERR_HTTP: return "unexpected HTTP status";
    case AF_ERR_NOTFOUND: return "not found";
    case AF_ERR_UNSAFE: return "unsafe input rejected";
    case AF_ERR_TIMEOUT: return "timed out";
    case AF_ERR_CHILD: return "child process failed";
    case AF_ERR_UNSUPPORTED: return "not supported";
    case AF_ERR_AUTH: return "unauthorized";
    case AF_ERR_CANCELLED: return "cancelled";
    case AF_ERR_NET: return "network error";
    case AF_ERR_STATE: return "invalid state";
    default: return "unknown error";
    }
}

void af_err_clear(af_err_t *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

int af_err_set(af_err_t *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

int af_err_prefix(af_err_t *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    char prefix[AF_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[AF_ERRMSG_MAX];
    memcpy(old, err->msg, sizeof old);
    if (!err->code)
        err->code = code;
    if (old[0])
        snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    else
        snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, af_strerror(err->code));
    return err->code;
}

const char *af_err_msg(const af_err_t *err, int code)
{
    if (err && err->msg[0])
        return err->msg;
    return af_strerror(err && err->code ? err->code : code);
}
