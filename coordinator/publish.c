/* publish.c -- the end of a successful build: check in the registry that
 * every slice is what its node said it is (a manifest whose config has the
 * slice's os/architecture/variant), build the OCI index over the slices,
 * and PUT it to every requested tag. Until the first tag PUT nothing
 * visible has changed; that PUT is the commit point. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "build.h"
#include "digest.h"
#include "image.h"
#include "log.h"
#include "oci.h"
#include "registry.h"

static void s_mark(af_attempt_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_mark(af_attempt_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->message, sizeof a->message, fmt, ap);
    va_end(ap);
    a->ok = false;
    snprintf(a->failure, sizeof a->failure, "verify");
}

/* The config of a slice's manifest IMG: in the registry, with the
 * slice's platform. Then records the size and media type the registry
 * serves. */
static int s_verify_config(af_registry_t *reg, const char *repo, af_slice_t *s, const char *node,
                           af_image_t *img, af_err_t *err)
{
    af_attempt_t *a = af_slice_current(s);
    af_err_t cerr = {0};
    int rc = af_image_config(reg, repo, img, &cerr);
    if (rc == AF_ERR_NOTFOUND && img->failed == AF_IMAGE_STEP_CONFIG) {
        s_mark(a, "config %s of the manifest from node %s is not in %s", img->doc->config.digest,
               node, repo);
        return af_err_set(err, AF_ERR_NOTFOUND, "%s: %s", s->platform_str, a->message);
    }
    if (rc && img->failed == AF_IMAGE_STEP_CONFIG) {
        *err = cerr;
        return af_err_prefix(err, rc, "verifying %s (node %s): config", s->platform_str, node);
    }
    if (rc) {
        s_mark(a, "image config from node %s has no valid platform: %s", node,
               af_err_msg(&cerr, rc));
        return af_err_set(err, AF_ERR_INVAL, "%s: %s", s->platform_str, a->message);
    }
    if (!af_platform_equal(&img->platform, &s->platform)) {
        char got[AF_PLATFORM_STR_MAX];
        af_platform_format(&img->platform, got, sizeof got);
        s_mark(a, "node %s built %s, not %s (image config os/architecture/variant)", node, got,
               s->platform_str);
        return af_err_set(err, AF_ERR_INVAL, "%s: %s", s->platform_str, a->message);
    }
    /* the index describes the bytes the registry serves */
    if (a->size != img->len)
        af_warn("%s: node %s reported size %llu, registry has %zu bytes", s->platform_str, node,
                (unsigned long long)a->size, img->len);
    a->size = img->len;
    snprintf(a->media_type, sizeof a->media_type, "%s", img->doc->media_type);
    return 0;
}

static int s_verify_one(af_registry_t *reg, const char *repo, af_slice_t *s, const char *node,
                        af_err_t *err)
{
    af_attempt_t *a = af_slice_current(s);
    af_image_t img;
    int rc = af_image_get(reg, repo, a->digest, NULL, 0, &img, err);
    if (rc == AF_ERR_NOTFOUND && img.failed == AF_IMAGE_STEP_FETCH) {
        s_mark(a, "manifest %s reported by node %s is not in %s", a->digest, node, repo);
        rc = af_err_set(err, AF_ERR_NOTFOUND, "%s: %s", s->platform_str, a->message);
    } else if (rc && img.failed == AF_IMAGE_STEP_FETCH) {
        af_err_prefix(err, rc, "verifying %s (node %s) in %s", s->platform_str, node, repo);
    } else if (rc) {
        s_mark(a, "manifest %s from node %s is malformed: %s", a->digest, node,
               af_err_msg(err, AF_ERR_PARSE));
        rc = af_err_set(err, AF_ERR_PARSE, "%s: %s", s->platform_str, a->message);
    } else if (strcmp(img.digest, a->digest)) {
        s_mark(a, "registry serves %s for the manifest %s reported by node %s", img.digest,
               a->digest, node);
        rc = af_err_set(err, AF_ERR_DIGEST, "%s: %s", s->platform_str, a->message);
    } else if (img.doc->is_index) {
        s_mark(a, "node %s pushed an image index (%s), not a single-platform manifest", node,
               img.doc->media_type);
        rc = af_err_set(err, AF_ERR_INVAL, "%s: %s", s->platform_str, a->message);
    } else if (a->media_type[0] && strcmp(a->media_type, img.doc->media_type)) {
        s_mark(a, "node %s reported media type %s, the registry serves %s", node, a->media_type,
               img.doc->media_type);
        rc = af_err_set(err, AF_ERR_INVAL, "%s: %s", s->platform_str, a->message);
    } else {
        rc = s_verify_config(reg, repo, s, node, &img, err);
    }
    af_image_release(&img);
    return rc;
}

int af_publish_verify(af_registry_t *reg, const char *repo, af_slice_t *slices, size_t n,
                      af_farm_t *farm, af_progress_t *progress, af_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        af_slice_t *s = &slices[i];
        af_attempt_t *a = af_slice_current(s);
        const char *node = af_attempt_node_name(a, farm);
        int rc = s_verify_one(reg, repo, s, node, err);
        if (rc)
            return rc;
        af_progress_status(progress, s->platform_str, node, "verified", a->digest);
    }
    return 0;
}

/* One descriptor per slice (its last attempt), caller frees; NULL on OOM. */
static af_descriptor_t *s_slice_descriptors(const af_slice_t *slices, size_t n, af_err_t *err)
{
    af_descriptor_t *d = calloc(n ? n : 1, sizeof *d);
    if (!d) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const af_attempt_t *a = &slices[i].attempts[slices[i].n_attempts - 1];
        snprintf(d[i].media_type, sizeof d[i].media_type, "%s",
                 a->media_type[0] ? a->media_type : AF_MT_OCI_MANIFEST);
        snprintf(d[i].digest, sizeof d[i].digest, "%s", a->digest);
        d[i].size = (int64_t)a->size;
        d[i].has_platform = true;
        d[i].platform = slices[i].platform;
    }
    return d;
}

static char *s_digested(char *body, size_t len, char digest[AF_DIGEST_STR_MAX], af_err_t *err)
{
    if (body && af_digest_buffer(body, len, digest)) {
        free(body);
        af_err_set(err, AF_ERR_NOMEM, "cannot digest the index");
        return NULL;
    }
    return body;
}

char *af_publish_docker_list(const af_slice_t *slices, size_t n, size_t *len_out,
                             char digest[AF_DIGEST_STR_MAX], af_err_t *err)
{
    af_descriptor_t *d = s_slice_descriptors(slices, n, err);
    if (!d)
        return NULL;
    char *body = af_oci_docker_list_build(d, n, len_out, err);
    free(d);
    return s_digested(body, body ? *len_out : 0, digest, err);
}

char *af_publish_index(const af_slice_t *slices, size_t n, int64_t source_date_epoch,
                       size_t *len_out, char digest[AF_DIGEST_STR_MAX], af_err_t *err)
{
    return af_publish_index_annotated(slices, n, source_date_epoch, NULL, 0, len_out, digest, err);
}

char *af_publish_index_annotated(const af_slice_t *slices, size_t n, int64_t source_date_epoch,
                                 const af_kv_t *extra, size_t n_extra, size_t *len_out,
                                 char digest[AF_DIGEST_STR_MAX], af_err_t *err)
{
    af_descriptor_t *d = s_slice_descriptors(slices, n, err);
    if (!d)
        return NULL;
    /* created = SOURCE_DATE_EPOCH keeps the index reproducible */
    char created[AF_OCI_TIME_LEN + 1];
    if (af_oci_format_time(source_date_epoch, created) < 0) {
        free(d);
        af_err_set(err, AF_ERR_INVAL, "SOURCE_DATE_EPOCH %" PRId64 " is out of range",
                   (int64_t)source_date_epoch);
        return NULL;
    }
    af_kv_t ann[1 + AF_MAX_LIST] = {{"org.opencontainers.image.created", created}};
    size_t n_ann = 1;
    for (size_t i = 0; i < n_extra && n_ann < sizeof ann / sizeof ann[0]; i++) {
        if (!strcmp(extra[i].key, ann[0].key))
            ann[0].value = extra[i].value; /* the user's created wins */
        else
            ann[n_ann++] = extra[i];
    }
    char *body = af_oci_index_build(d, n, ann, n_ann, len_out, err);
    free(d);
    return s_digested(body, body ? *len_out : 0, digest, err);
}

int af_publish_tags(af_registry_t *reg, const char *repo, const af_ref_t *tags, size_t n_tags,
                    const char *media_type, const char *body, size_t len, size_t *n_done,
                    af_err_t *err)
{
    *n_done = 0;
    for (size_t i = 0; i < n_tags; i++) {
        const char *tag = tags[i].tag[0] ? tags[i].tag : "latest";
        char dg[AF_DIGEST_STR_MAX];
        int rc = af_registry_manifest_put(reg, repo, tag, media_type, body, len, dg, err);
        if (rc)
            return af_err_prefix(err, rc, "tagging %s:%s", repo, tag);
        (*n_done)++;
    }
    return 0;
}
