/* digest.h -- streaming sha256 (OpenSSL EVP) and "sha256:<hex>" strings.
 *
 * Used by the context packer/receiver, layer writer, registry client and
 * verifier. Streams never hold their input: feed any amount in pieces. */
#ifndef AF_DIGEST_H
#define AF_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "limits.h"

typedef struct af_digest af_digest_t;

/* New sha256 stream. Caller owns; NULL on failure. */
af_digest_t *af_digest_new(void);
void af_digest_destroy(af_digest_t **self_p);

/* Feeds LEN bytes. 0 or AF_ERR_NOMEM (EVP failure). */
int af_digest_update(af_digest_t *self, const void *data, size_t len)
    __attribute__((warn_unused_result));

/* Bytes fed so far. */
uint64_t af_digest_size(const af_digest_t *self);

/* Writes "sha256:<64 lowercase hex>" to out (AF_DIGEST_STR_MAX). The stream
 * can not be fed afterwards. 0 or AF_ERR_STATE. */
int af_digest_final(af_digest_t *self, char out[AF_DIGEST_STR_MAX])
    __attribute__((warn_unused_result));

/* One-shot over a buffer. */
int af_digest_buffer(const void *data, size_t len, char out[AF_DIGEST_STR_MAX])
    __attribute__((warn_unused_result));

/* Streams PATH from disk (bounded buffer); sets *size when non-NULL. */
int af_digest_file(const char *path, char out[AF_DIGEST_STR_MAX], uint64_t *size, af_err_t *err)
    __attribute__((warn_unused_result));

/* True when S is exactly "sha256:" + 64 lowercase hex digits. */
bool af_digest_valid(const char *s);

/* The 64-hex part of a valid digest string, or NULL. Borrowed from S. */
const char *af_digest_hex(const char *s);

#endif
