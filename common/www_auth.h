/* www_auth.h -- the registry's HTTP headers, read without trusting them.
 *
 * A registry (hostile or not) chooses every byte of its reply headers;
 * these functions are the only code that reads them: one header line's
 * value (Location, Docker-Content-Digest, Content-Type, WWW-Authenticate)
 * and the auth-params of a WWW-Authenticate challenge (RFC 7235: a scheme,
 * then key=value or key="quoted value" pairs). Lengths are bounded; a
 * value that does not fit is cut, never overflowed. Used by registry.c,
 * fuzzed by tests/fuzz/fuzz_www_auth.c. */
#ifndef AF_WWW_AUTH_H
#define AF_WWW_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AF_WWW_AUTH_REALM_MAX 2048
#define AF_WWW_AUTH_SERVICE_MAX 512
#define AF_WWW_AUTH_SCOPE_MAX 1024

typedef enum { AF_WWW_AUTH_OTHER, AF_WWW_AUTH_BASIC, AF_WWW_AUTH_BEARER } af_www_auth_scheme_t;

typedef struct {
    af_www_auth_scheme_t scheme;
    char realm[AF_WWW_AUTH_REALM_MAX];     /* "" when absent */
    char service[AF_WWW_AUTH_SERVICE_MAX]; /* "" when absent */
    char scope[AF_WWW_AUTH_SCOPE_MAX];     /* "" when absent */
} af_www_auth_t;

/* Parses CHALLENGE (NUL-terminated; borrowed) into *out. Cannot fail:
 * an unknown scheme gives AF_WWW_AUTH_OTHER, missing params "". */
void af_www_auth_parse(const char *challenge, af_www_auth_t *out);

/* The value of header NAME (case-insensitive) when LINE (N bytes, not
 * NUL-terminated, as libcurl hands header lines over) is that header,
 * trimmed of blanks and CR/LF; malloc'd (caller frees). NULL when LINE is
 * another header, or the value is MAX bytes or longer. */
char *af_www_header_value(const char *line, size_t n, const char *name, size_t max);

#endif
