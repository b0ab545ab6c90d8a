/* image.c -- one image as a registry serves it (see image.h). */
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"

void af_image_release(af_image_t *img)
{
    if (!img)
        return;
    free(img->body);
    free(img->content_type);
    af_oci_doc_destroy(&img->doc);
    free(img->config);
    memset(img, 0, sizeof *img);
}

static int s_fail(af_image_t *out, af_image_step_t step, int rc)
{
    out->failed = step;
    return rc;
}

/* GETs and parses one manifest or index into OUT (emptied first). */
static int s_manifest(af_registry_t *reg, const char *repo, const char *reference, bool raw,
                      af_image_t *out, af_err_t *err)
{
    af_image_release(out);
    int rc = af_registry_manifest_get(reg, repo, reference, &out->body, &out->len,
                                      &out->content_type, out->digest, err);
    if (rc)
        return s_fail(out, AF_IMAGE_STEP_FETCH, rc);
    if (raw)
        return 0;
    out->doc = af_oci_doc_parse(out->body, out->len, out->content_type, err);
    if (!out->doc)
        return s_fail(out, AF_IMAGE_STEP_PARSE, err && err->code ? err->code : AF_ERR_PARSE);
    return 0;
}

int af_image_get(af_registry_t *reg, const char *repo, const char *reference,
                 const af_platform_t *want, unsigned flags, af_image_t *out, af_err_t *err)
{
    memset(out, 0, sizeof *out);
    bool raw = flags & AF_IMAGE_RAW;
    int rc = s_manifest(reg, repo, reference, raw, out, err);
    if (rc || raw)
        return rc;
    if (want && out->doc->is_index) {
        const af_descriptor_t *d = af_oci_index_select(out->doc, want);
        if (!d) {
            char p[AF_PLATFORM_STR_MAX];
            return s_fail(out, AF_IMAGE_STEP_SELECT,
                          af_err_set(err, AF_ERR_NOTFOUND, "no manifest for %s",
                                     af_platform_format(want, p, sizeof p)));
        }
        char child[AF_DIGEST_STR_MAX];
        snprintf(child, sizeof child, "%s", d->digest);
        if ((rc = s_manifest(reg, repo, child, false, out, err)) != 0)
            return rc;
        if (out->doc->is_index)
            return s_fail(out, AF_IMAGE_STEP_NESTED,
                          af_err_set(err, AF_ERR_UNSUPPORTED, "nested index is not supported"));
    }
    if (!(flags & AF_IMAGE_CONFIG) || out->doc->is_index)
        return 0;
    return af_image_config(reg, repo, out, err);
}

int af_image_config(af_registry_t *reg, const char *repo, af_image_t *img, af_err_t *err)
{
    if (!img->doc || img->doc->is_index)
        return s_fail(img, AF_IMAGE_STEP_CONFIG,
                      af_err_set(err, AF_ERR_INVAL, "an index has no config"));
    free(img->config);
    img->config = NULL;
    int rc = af_registry_blob_get(reg, repo, img->doc->config.digest, AF_CONFIG_MAX_BYTES,
                                  &img->config, &img->config_len, err);
    if (rc)
        return s_fail(img, AF_IMAGE_STEP_CONFIG, rc);
    rc = af_oci_config_platform(img->config, img->config_len, &img->platform, err);
    if (rc)
        return s_fail(img, AF_IMAGE_STEP_PLATFORM, rc);
    img->has_platform = true;
    return 0;
}
