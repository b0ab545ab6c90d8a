/* fuzz_www_auth.c -- libFuzzer target for the registry reply headers
 * (common/www_auth.c): the bytes are one header line as libcurl hands it
 * over, then, NUL-terminated, a WWW-Authenticate challenge.
 *
 * Whatever the bytes: no crash, leak or hang; a header value is shorter
 * than the limit, holds no NUL and no leading blank; parsed realm, service
 * and scope are NUL-terminated within their fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "www_auth.h"

#define S_MAX 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"Location", "Docker-Content-Digest", "Content-Type",
                                        "WWW-Authenticate"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *v = af_www_header_value((const char *)data, size, names[i], S_MAX);
        if (v) {
            size_t l = strlen(v);
            if (l >= S_MAX || l >= size || (l && (v[0] == ' ' || v[0] == '\t')))
                abort();
            af_www_auth_t a;
            af_www_auth_parse(v, &a);
            free(v);
        }
    }
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    af_www_auth_t a;
    af_www_auth_parse(s, &a);
    if (strnlen(a.realm, sizeof a.realm) == sizeof a.realm ||
        strnlen(a.service, sizeof a.service) == sizeof a.service ||
        strnlen(a.scope, sizeof a.scope) == sizeof a.scope || a.scheme > AF_WWW_AUTH_BEARER)
        abort();
    free(s);
    return 0;
}
