/* engine_metadata.c -- reading what an engine leaves on disk: its
 * metadata JSON (buildctl/buildx --metadata-file) and digest files
 * (buildah --digestfile), bounded and validated. See engine.h. */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "digest.h"
#include "job.h"
#include "log.h"
#include "oci.h"
#include "process.h"
#include "ref.h"
#include "registry.h"

extern char **environ;

#define S_METADATA_MAX (1024 * 1024)

/* --- files the engines leave -------------------------------------------- */

int af_engine_file_read(const char *path, size_t max, char **body_p, size_t *len_p, af_err_t *err)
{
    *body_p = NULL;
    *len_p = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "%s: %s", path,
                          strerror(errno));
    char *buf = malloc(max + 1);
    if (!buf) {
        close(fd);
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    }
    size_t len = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            rc = af_err_set(err, AF_ERR_TOOBIG, "%s: larger than %zu bytes", path, max);
            break;
        }
    }
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *body_p = buf;
    *len_p = len;
    return 0;
}

int af_engine_digest_file_read(const char *path, char out[AF_DIGEST_STR_MAX], af_err_t *err)
{
    char *body = NULL;
    size_t len = 0;
    int rc = af_engine_file_read(path, 256, &body, &len, err);
    if (rc < 0)
        return rc;
    while (len && (body[len - 1] == '\n' || body[len - 1] == '\r'))
        body[--len] = '\0';
    char d[AF_DIGEST_STR_MAX + 8];
    if (len == 64 && strspn(body, "0123456789abcdef") == 64)
        snprintf(d, sizeof d, "sha256:%s", body);
    else
        snprintf(d, sizeof d, "%.*s", (int)(len < sizeof d - 1 ? len : sizeof d - 1), body);
    if (strlen(body) != len || !af_digest_valid(d))
        rc = af_err_set(err, AF_ERR_PARSE, "%s: not a sha256 digest", path);
    else
        snprintf(out, AF_DIGEST_STR_MAX, "%s", d);
    free(body);
    return rc;
}

int af_engine_metadata_parse(const char *json, size_t len, af_engine_image_t *out, af_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (!json || len > S_METADATA_MAX)
        return af_err_set(err, AF_ERR_TOOBIG, "metadata file larger than %d bytes", S_METADATA_MAX);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;
    if (!root)
        return af_err_set(err, AF_ERR_PARSE, "metadata file:%d:%d: %s", jerr.line, jerr.column,
                          jerr.text);
    if (!json_is_object(root)) {
        rc = af_err_set(err, AF_ERR_PARSE, "metadata file: not a JSON object");
        goto out;
    }
    const char *digest = json_string_value(json_object_get(root, "containerimage.digest"));
    if (!digest || !af_digest_valid(digest)) {
        rc =
            af_err_set(err, AF_ERR_PARSE,
                       "metadata file: no valid \"containerimage.digest\" (was the image pushed?)");
        goto out;
    }
    snprintf(out->digest, sizeof out->digest, "%s", digest);
    json_t *desc = json_object_get(root, "containerimage.descriptor");
    if (desc) {
        const char *mt = json_string_value(json_object_get(desc, "mediaType"));
        const char *dd = json_string_value(json_object_get(desc, "digest"));
        json_t *size = json_object_get(desc, "size");
        if (!json_is_object(desc) || !mt || !dd || !json_is_integer(size)) {
            rc = af_err_set(err, AF_ERR_PARSE,
                            "metadata file: \"containerimage.descriptor\" needs mediaType, digest "
                            "and size");
            goto out;
        }
        if (strcmp(dd, digest)) {
            rc = af_err_set(err, AF_ERR_DIGEST,
                            "metadata file: descriptor digest %s differs from %s", dd, digest);
            goto out;
        }
        json_int_t sz = json_integer_value(size);
        if (sz <= 0 || sz > AF_MANIFEST_MAX_BYTES) {
            rc = af_err_set(err, AF_ERR_PARSE, "metadata file: manifest size %lld out of range",
                            (long long)sz);
            goto out;
        }
        if (!af_oci_is_manifest(mt)) {
            rc = af_err_set(err, AF_ERR_UNSUPPORTED,
                            "metadata file: engine pushed a %s, not a single-platform image "
                            "manifest (attestations enabled?)",
                            mt);
            goto out;
        }
        if (strlen(mt) >= sizeof out->media_type) {
            rc = af_err_set(err, AF_ERR_PARSE, "metadata file: media type too long");
            goto out;
        }
        snprintf(out->media_type, sizeof out->media_type, "%s", mt);
        out->size = (uint64_t)sz;
    }
out:
    json_decref(root);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int af_engine_metadata_read(const char *path, af_engine_image_t *out, af_err_t *err)
{
    char *body = NULL;
    size_t len = 0;
    int rc = af_engine_file_read(path, S_METADATA_MAX, &body, &len, err);
    if (rc == 0)
        rc = af_engine_metadata_parse(body, len, out, err);
    free(body);
    return rc;
}
