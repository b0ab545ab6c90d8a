/* oci.h -- OCI image config, manifest and index JSON (jansson).
 *
 * Builders return the exact bytes to digest and push: they are never
 * re-serialised afterwards. Keys are sorted and the output compact, so
 * the same inputs give the same bytes. Parsers take untrusted registry
 * replies, bound their sizes, and accept both OCI and Docker v2 media
 * types. */
#ifndef AF_OCI_H
#define AF_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "kv.h"
#include "limits.h"
#include "platform.h"

#define AF_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define AF_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define AF_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define AF_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define AF_MT_OCI_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define AF_MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define AF_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define AF_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define AF_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define AF_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

#define AF_OCI_TIME_LEN 20 /* "YYYY-MM-DDTHH:MM:SSZ" */

/* The Accept header value listing the four manifest/index types. */
#define AF_MT_ACCEPT_MANIFESTS                                                                     \
    AF_MT_OCI_INDEX ", " AF_MT_OCI_MANIFEST ", " AF_MT_DOCKER_LIST ", " AF_MT_DOCKER_MANIFEST

typedef struct {
    char media_type[AF_MAX_NAME + 1];
    char digest[AF_DIGEST_STR_MAX];
    int64_t size;
    bool has_platform;
    af_platform_t platform;
} af_descriptor_t;

bool af_oci_is_index(const char *media_type);
bool af_oci_is_manifest(const char *media_type);

/* What a native recipe says about the image. Everything is borrowed. */
typedef struct {
    af_platform_t platform;
    int64_t created;               /* seconds since epoch (SOURCE_DATE_EPOCH) */
    const char *const *entrypoint; /* used when set_entrypoint */
    size_t n_entrypoint;
    bool set_entrypoint;
    const char *const *cmd; /* used when set_cmd */
    size_t n_cmd;
    bool set_cmd;
    const af_kv_t *env; /* KEY=VALUE, overriding the base's same KEY */
    size_t n_env;
    const char *workdir;   /* NULL keeps the base's */
    const char *user;      /* NULL keeps the base's */
    const af_kv_t *labels; /* merged over the base's */
    size_t n_labels;
    const char *created_by; /* history text, may be NULL */
} af_image_spec_t;

/* Formats `secs` (seconds since the epoch, UTC) as RFC 3339
 * "YYYY-MM-DDTHH:MM:SSZ" into out. Works in int64 arithmetic, not through
 * time_t, so dates after 2038 format right on 32-bit builds whose C
 * library and dependencies use a 32-bit time_t (Debian 12 armhf). Returns
 * 0, or AF_ERR_INVAL when secs is before 1970 or after 9999-12-31T23:59:59Z
 * (out is then ""). Cannot fail otherwise. */
int af_oci_format_time(int64_t secs, char out[AF_OCI_TIME_LEN + 1]);

/* Builds an image config. BASE (may be NULL, else the base image's config
 * bytes) is extended: its rootfs diff_ids and history come first. DIFF_IDS
 * are this build's layers, in order. Returns a malloc'd buffer (caller
 * owns, *len_out set) or NULL with err set. */
char *af_oci_config_build(const af_image_spec_t *spec, const char *base, size_t base_len,
                          const char *const *diff_ids, size_t n_diff_ids, size_t *len_out,
                          af_err_t *err);

/* Builds an OCI image manifest (schemaVersion 2, mediaType set). */
char *af_oci_manifest_build(const af_descriptor_t *config, const af_descriptor_t *layers,
                            size_t n_layers, const af_kv_t *annotations, size_t n_annotations,
                            size_t *len_out, af_err_t *err);

/* A Docker v2 image manifest (application/vnd.docker.distribution.
 * manifest.v2+json): the config must be AF_MT_DOCKER_CONFIG and every
 * layer AF_MT_DOCKER_LAYER_GZIP (AF_ERR_INVAL naming it otherwise); no
 * annotations. */
char *af_oci_docker_manifest_build(const af_descriptor_t *config, const af_descriptor_t *layers,
                                   size_t n_layers, size_t *len_out, af_err_t *err);

/* Builds an OCI image index; each entry must have a platform. */
char *af_oci_index_build(const af_descriptor_t *manifests, size_t n, const af_kv_t *annotations,
                         size_t n_annotations, size_t *len_out, af_err_t *err);

/* A Docker manifest list v2 (application/vnd.docker.distribution.manifest.
 * list.v2+json) over MANIFESTS, for registries and tools that reject OCI
 * indexes. Every entry must be a Docker v2 manifest (AF_ERR_INVAL naming
 * it otherwise); Docker lists carry no annotations. As af_oci_index_build
 * otherwise. */
char *af_oci_docker_list_build(const af_descriptor_t *manifests, size_t n, size_t *len_out,
                               af_err_t *err);

/* A parsed manifest or index. Caller owns; free with af_oci_doc_destroy. */
typedef struct {
    char media_type[AF_MAX_NAME + 1]; /* from the body, else the Content-Type */
    bool is_index;
    af_descriptor_t config;  /* manifests only */
    af_descriptor_t *layers; /* manifests only */
    size_t n_layers;
    af_descriptor_t *manifests; /* indexes only */
    size_t n_manifests;
} af_oci_doc_t;

/* Parses a manifest or index body (at most AF_MANIFEST_MAX_BYTES).
 * CONTENT_TYPE (may be NULL) is used when the body has no mediaType.
 * Validates digests, sizes and required fields. */
af_oci_doc_t *af_oci_doc_parse(const char *body, size_t len, const char *content_type,
                               af_err_t *err);
void af_oci_doc_destroy(af_oci_doc_t **self_p);

/* Picks the manifest for P from an index (exact match, then a variant-less
 * entry for the same os/arch). Borrowed from DOC, NULL if none. */
const af_descriptor_t *af_oci_index_select(const af_oci_doc_t *doc, const af_platform_t *p);

/* Reads os/architecture/variant from an image config body. */
int af_oci_config_platform(const char *body, size_t len, af_platform_t *out, af_err_t *err)
    __attribute__((warn_unused_result));

#endif
