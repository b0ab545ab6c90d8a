/* slicecache.c -- a native slice that was built before is not built again
 * (see slicecache.h). */
#include "slicecache.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "image.h"
#include "limits.h"

static int s_kv_cmp(const void *a, const void *b)
{
    const af_kv_t *x = *(const af_kv_t *const *)a, *y = *(const af_kv_t *const *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

/* "NAME K=V\n" for every pair, sorted, into D. */
static int s_pairs(af_digest_t *d, const char *name, const af_kv_t *kv, size_t n)
{
    const af_kv_t **sorted = calloc(n ? n : 1, sizeof *sorted);
    if (!sorted)
        return AF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        sorted[i] = &kv[i];
    qsort(sorted, n, sizeof *sorted, s_kv_cmp);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        /* lengths first: no key or value can forge another's boundary */
        char head[96];
        int hn = snprintf(head, sizeof head, "%s %zu %zu\n", name, strlen(sorted[i]->key),
                          strlen(sorted[i]->value));
        rc = af_digest_update(d, head, (size_t)hn);
        if (!rc)
            rc = af_digest_update(d, sorted[i]->key, strlen(sorted[i]->key));
        if (!rc)
            rc = af_digest_update(d, sorted[i]->value, strlen(sorted[i]->value));
    }
    free(sorted);
    return rc;
}

int af_slicecache_key(const af_build_spec_t *spec, const char *context_digest,
                      const af_platform_t *p, const char *base, char key[AF_DIGEST_STR_MAX])
{
    af_digest_t *d = af_digest_new();
    if (!d)
        return AF_ERR_NOMEM;
    char plat[AF_PLATFORM_STR_MAX];
    char *text = NULL;
    int n = asprintf(&text,
                     "archfarm slice key v1\nversion %s\ncontext %s\nrecipe %s %zu:%s\n"
                     "platform %s\nbase %s\nsource_date_epoch %" PRId64 "\nformat %s\n"
                     "compression %s %d\ntarget %s\n",
                     AF_VERSION, context_digest, spec->recipe_kind, strlen(spec->recipe_path),
                     spec->recipe_path, af_platform_format(p, plat, sizeof plat), base,
                     spec->source_date_epoch, spec->manifest_format ? spec->manifest_format : "oci",
                     spec->compression && *spec->compression ? spec->compression : "gzip",
                     spec->compression_level, spec->target ? spec->target : "");
    int rc = n < 0 ? AF_ERR_NOMEM : af_digest_update(d, text, (size_t)n);
    free(text);
    if (!rc)
        rc = s_pairs(d, "build-arg", spec->build_args, spec->n_build_args);
    if (!rc)
        rc = s_pairs(d, "annotation", spec->annotations, spec->n_annotations);
    if (!rc)
        rc = af_digest_final(d, key);
    af_digest_destroy(&d);
    return rc;
}

void af_slicecache_tag(const char *key, char tag[AF_SLICECACHE_TAG_MAX])
{
    const char *hex = strchr(key, ':');
    snprintf(tag, AF_SLICECACHE_TAG_MAX, "%s%.64s", AF_SLICECACHE_TAG_PREFIX, hex ? hex + 1 : key);
}

int af_slicecache_find(af_registry_t *reg, const char *repo, const char *key,
                       const af_platform_t *p, char digest[AF_DIGEST_STR_MAX], char *media_type,
                       uint64_t *size, af_err_t *err)
{
    char tag[AF_SLICECACHE_TAG_MAX];
    af_slicecache_tag(key, tag);
    af_image_t img;
    int rc = af_image_get(reg, repo, tag, NULL, AF_IMAGE_CONFIG, &img, err);
    if (!rc && (img.doc->is_index || !img.has_platform || !af_platform_equal(&img.platform, p)))
        rc = af_err_set(err, AF_ERR_INVAL, "%s:%s is not a manifest for this platform", repo, tag);
    if (!rc) {
        snprintf(digest, AF_DIGEST_STR_MAX, "%s", img.digest);
        snprintf(media_type, AF_MAX_NAME + 1, "%s", img.doc->media_type);
        *size = img.len;
    }
    af_image_release(&img);
    return rc;
}

int af_slicecache_record(af_registry_t *reg, const char *repo, const char *key, const char *digest,
                         af_err_t *err)
{
    char tag[AF_SLICECACHE_TAG_MAX];
    af_slicecache_tag(key, tag);
    af_image_t img;
    int rc = af_image_get(reg, repo, digest, NULL, 0, &img, err);
    if (!rc)
        rc = af_registry_manifest_put(reg, repo, tag, img.doc->media_type, img.body, img.len, NULL,
                                      err);
    af_image_release(&img);
    return rc;
}
