/* digest.c -- streaming sha256 over OpenSSL EVP, and "sha256:<hex>" strings.
 *
 * Everything that names content by digest goes through here: the context
 * packer and receiver, the layer writer, the registry client and the
 * verifier. A stream is fed in pieces of any size and never keeps its input;
 * af_digest_file() reads through one fixed 64 KiB buffer, so a file of any
 * size costs the same memory. */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_PREFIX "sha256:"
#define S_PREFIX_LEN 7
#define S_HEX_LEN 64
#define S_FILE_BUF (64 * 1024)

struct af_digest {
    EVP_MD_CTX *ctx;
    uint64_t size;
    bool finished;
};

af_digest_t *af_digest_new(void)
{
    af_digest_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = EVP_MD_CTX_new();
    if (!self->ctx || EVP_DigestInit_ex(self->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(self->ctx);
        free(self);
        return NULL;
    }
    return self;
}

void af_digest_destroy(af_digest_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    EVP_MD_CTX_free((*self_p)->ctx);
    free(*self_p);
    *self_p = NULL;
}

int af_digest_update(af_digest_t *self, const void *data, size_t len)
{
    if (!self || self->finished)
        return AF_ERR_STATE;
    if (len == 0)
        return 0;
    if (EVP_DigestUpdate(self->ctx, data, len) != 1)
        return AF_ERR_NOMEM;
    self->size += len;
    return 0;
}

uint64_t af_digest_size(const af_digest_t *self)
{
    return self ? self->size : 0;
}

int af_digest_final(af_digest_t *self, char out[AF_DIGEST_STR_MAX])
{
    if (!self || self->finished)
        return AF_ERR_STATE;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    self->finished = true;
    if (EVP_DigestFinal_ex(self->ctx, md, &mdlen) != 1 || mdlen != S_HEX_LEN / 2)
        return AF_ERR_STATE;
    static const char hex[] = "0123456789abcdef";
    memcpy(out, S_PREFIX, S_PREFIX_LEN);
    for (unsigned int i = 0; i < mdlen; i++) {
        out[S_PREFIX_LEN + 2 * i] = hex[md[i] >> 4];
        out[S_PREFIX_LEN + 2 * i + 1] = hex[md[i] & 0xf];
    }
    out[S_PREFIX_LEN + S_HEX_LEN] = '\0';
    return 0;
}

int af_digest_buffer(const void *data, size_t len, char out[AF_DIGEST_STR_MAX])
{
    af_digest_t *d = af_digest_new();
    if (!d)
        return AF_ERR_NOMEM;
    int rc = af_digest_update(d, data, len);
    if (rc == 0)
        rc = af_digest_final(d, out);
    af_digest_destroy(&d);
    return rc;
}

int af_digest_file(const char *path, char out[AF_DIGEST_STR_MAX], uint64_t *size, af_err_t *err)
{
    int rc = 0;
    int fd = -1;
    unsigned char *buf = NULL;
    af_digest_t *d = NULL;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "%s: %s", path,
                        strerror(errno));
        goto out;
    }
    buf = malloc(S_FILE_BUF);
    d = af_digest_new();
    if (!buf || !d) {
        rc = af_err_set(err, AF_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, S_FILE_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = af_err_set(err, AF_ERR_IO, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if ((rc = af_digest_update(d, buf, (size_t)n)) != 0) {
            af_err_set(err, rc, "%s: digest update failed", path);
            goto out;
        }
    }
    if ((rc = af_digest_final(d, out)) != 0) {
        af_err_set(err, rc, "%s: digest failed", path);
        goto out;
    }
    if (size)
        *size = af_digest_size(d);
out:
    af_digest_destroy(&d);
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

bool af_digest_valid(const char *s)
{
    if (!s || strncmp(s, S_PREFIX, S_PREFIX_LEN) != 0)
        return false;
    const char *h = s + S_PREFIX_LEN;
    for (int i = 0; i < S_HEX_LEN; i++) {
        char c = h[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return h[S_HEX_LEN] == '\0';
}

const char *af_digest_hex(const char *s)
{
    return af_digest_valid(s) ? s + S_PREFIX_LEN : NULL;
}
