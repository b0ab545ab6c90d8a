/* base64.h -- base64 of registry credentials ("user:password"), the one
 * helper for the HTTP Basic header and the Docker auth-file "auth" field.
 * Uses OpenSSL's EVP_EncodeBlock (standard alphabet, padded, no newlines). */
#ifndef AF_COMMON_BASE64_H
#define AF_COMMON_BASE64_H

#include <stddef.h>

/* base64 of LEN bytes at IN, NUL-terminated. Caller owns the result (zero
 * it with explicit_bzero before free when it holds a secret). NULL on OOM. */
char *af_base64_encode(const void *in, size_t len);

/* base64("USER:PASSWORD"), PASSWORD NULL meaning empty. Caller owns the
 * result, which holds a secret: explicit_bzero it before free. The
 * plaintext it builds is zeroed before return. NULL on OOM. */
char *af_base64_user_pass(const char *user, const char *password);

#endif
