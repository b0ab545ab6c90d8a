/* image.h -- one image as a registry serves it.
 *
 * "GET the manifest -> parse it -> for a single-platform manifest, GET its
 * config -> read its platform" is the one path for every reader:
 * `imagetools inspect` and `create`, the coordinator's verification of each
 * slice, the agent's base image and its check of an engine's push. An
 * index can be resolved to the entry for one platform on the way.
 *
 * Ownership: af_image_get fills a caller-owned af_image_t whose members it
 * allocates; af_image_release frees them, on success and on failure alike
 * (what was fetched before a failing step stays readable until then). */
#ifndef AF_COMMON_IMAGE_H
#define AF_COMMON_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "oci.h"
#include "platform.h"
#include "registry.h"

/* The step that failed, for callers that word each failure their way. */
typedef enum {
    AF_IMAGE_STEP_NONE = 0,
    AF_IMAGE_STEP_FETCH,    /* the manifest GET (AF_ERR_NOTFOUND: no such manifest) */
    AF_IMAGE_STEP_PARSE,    /* not a valid manifest or index */
    AF_IMAGE_STEP_SELECT,   /* an index without an entry for the wanted platform */
    AF_IMAGE_STEP_NESTED,   /* an index entry that is itself an index */
    AF_IMAGE_STEP_CONFIG,   /* the config blob GET (AF_ERR_NOTFOUND: not in the repository) */
    AF_IMAGE_STEP_PLATFORM, /* the config has no valid os/architecture */
} af_image_step_t;

/* What to do beyond the GET. */
enum {
    AF_IMAGE_RAW = 1u << 0,    /* only the bytes: no parse, no config */
    AF_IMAGE_CONFIG = 1u << 1, /* a single-platform manifest's config and platform */
};

typedef struct {
    char *body; /* the manifest or index bytes as served */
    size_t len;
    char *content_type;             /* the Content-Type header, may be NULL */
    char digest[AF_DIGEST_STR_MAX]; /* sha256 of BODY */
    af_oci_doc_t *doc;              /* parsed BODY (NULL with AF_IMAGE_RAW) */
    char *config;                   /* with AF_IMAGE_CONFIG, for a manifest */
    size_t config_len;
    af_platform_t platform; /* from CONFIG */
    bool has_platform;
    af_image_step_t failed; /* the step that failed, NONE on success */
} af_image_t;

/* GETs REFERENCE (a tag or a digest; a digest is checked against the
 * bytes) from REPO through REG (borrowed) into OUT (zeroed first), then
 * does what FLAGS say. With WANT (may be NULL) an index is resolved to its
 * entry for WANT (af_oci_index_select) and that manifest is what OUT
 * holds. Returns 0 or an AF_ERR_* code with err set and out->failed
 * naming the step; err's message is the registry's or the parser's,
 * without a prefix: callers say what they were reading. */
int af_image_get(af_registry_t *reg, const char *repo, const char *reference,
                 const af_platform_t *want, unsigned flags, af_image_t *out, af_err_t *err)
    __attribute__((warn_unused_result));

/* For IMG, a single-platform manifest got without AF_IMAGE_CONFIG: GETs
 * its config from REPO and reads the platform, as AF_IMAGE_CONFIG does
 * (for callers that check the manifest first). 0 or an error with
 * img->failed set. */
int af_image_config(af_registry_t *reg, const char *repo, af_image_t *img, af_err_t *err)
    __attribute__((warn_unused_result));

/* Frees what af_image_get allocated and zeroes IMG. NULL-safe. */
void af_image_release(af_image_t *img);

#endif
