/* base64.c -- base64 encoding of credentials (see base64.h). Used by the
 * agent's auth-file writer; the registry client may use it for Basic auth. */
#include "base64.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

char *af_base64_encode(const void *in, size_t len)
{
    if (len > (size_t)(INT32_MAX / 4) * 3)
        return NULL;
    unsigned char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock(out, (const unsigned char *)in, (int)len);
    return (char *)out;
}

char *af_base64_user_pass(const char *user, const char *password)
{
    size_t ulen = strlen(user), plen = password ? strlen(password) : 0;
    size_t raw_len = ulen + 1 + plen;
    char *raw = malloc(raw_len + 1);
    if (!raw)
        return NULL;
    memcpy(raw, user, ulen);
    raw[ulen] = ':';
    if (plen)
        memcpy(raw + ulen + 1, password, plen);
    char *b64 = af_base64_encode(raw, raw_len);
    explicit_bzero(raw, raw_len);
    free(raw);
    return b64;
}
