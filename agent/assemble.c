/* assemble.c -- layer, config and manifest of a native build, pushed by
 * digest (see assemble.h). Runs in a worker thread: it may block on the
 * disk and the network, and checks for a cancel between steps.
 *
 * Registry settings: the target registry uses the BUILD's insecure flag
 * and credentials. A base image on the same registry host shares them
 * (and its layers are mounted across repositories); a base image on
 * another host is fetched anonymously over verified TLS. */
#include "assemble.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "digest.h"
#include "image.h"
#include "log.h"
#include "oci.h"
#include "ref.h"
#include "registry.h"

#define S_CREATED_BY "archfarm-agent native recipe"

af_assemble_args_t *af_assemble_args_new(void)
{
    return calloc(1, sizeof(af_assemble_args_t));
}

void af_assemble_args_free(void *varg)
{
    af_assemble_args_t *a = (af_assemble_args_t *)varg;
    if (!a)
        return;
    af_push_target_clear(&a->target);
    free(a->job);
    free(a->node);
    free(a->ctx_dir);
    free(a->job_dir);
    af_recipe_destroy(&a->recipe);
    free(a);
}

/* "sha256:0123456789ab…" */
static const char *s_short(const char *digest, char *buf, size_t len)
{
    const char *hex = af_digest_hex(digest);
    snprintf(buf, len, "sha256:%.12s\xe2\x80\xa6", hex ? hex : digest);
    return buf;
}

static const char *s_human(uint64_t n, char *buf, size_t len)
{
    if (n < 1024)
        snprintf(buf, len, "%" PRIu64 " B", n);
    else if (n < 1024 * 1024)
        snprintf(buf, len, "%.1f KiB", (double)n / 1024.0);
    else if (n < 1024ULL * 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", (double)n / (1024.0 * 1024.0));
    else
        snprintf(buf, len, "%.2f GiB", (double)n / (1024.0 * 1024.0 * 1024.0));
    return buf;
}

static int s_cancelled(af_worker_ctx_t *ctx, af_err_t *err)
{
    if (af_worker_cancelled(ctx))
        return af_err_set(err, AF_ERR_CANCELLED, "cancelled");
    return 0;
}

static int s_write_file(const char *path, const char *data, size_t len, af_err_t *err)
{
    FILE *f = fopen(path, "wbe");
    if (!f)
        return af_err_set(err, AF_ERR_IO, "%s: cannot create", path);
    size_t n = fwrite(data, 1, len, f);
    if (fclose(f) != 0 || n != len)
        return af_err_set(err, AF_ERR_IO, "%s: write failed", path);
    return 0;
}

typedef struct {
    af_oci_doc_t *manifest; /* the base image's manifest for our platform */
    char *config;           /* its config bytes */
    size_t config_len;
} s_base_t;

static void s_base_clear(s_base_t *b)
{
    af_oci_doc_destroy(&b->manifest);
    free(b->config);
    b->config = NULL;
}

/* Resolves FROM to a manifest and config for the slice's platform. */
static int s_resolve_base(af_worker_ctx_t *ctx, af_assemble_args_t *a, af_registry_t *reg,
                          const af_ref_t *base_ref, const char *from, s_base_t *out, af_err_t *err)
{
    af_image_t img = {0};
    char p[AF_PLATFORM_STR_MAX];
    af_worker_log(ctx, "resolving base image %s", from);
    int rc = af_image_get(reg, base_ref->repository, af_ref_reference(base_ref), &a->platform,
                          AF_IMAGE_CONFIG, &img, err);
    switch (rc ? img.failed : AF_IMAGE_STEP_NONE) {
    case AF_IMAGE_STEP_NONE:
        out->manifest = img.doc; /* taken from IMG */
        out->config = img.config;
        out->config_len = img.config_len;
        img.doc = NULL;
        img.config = NULL;
        break;
    case AF_IMAGE_STEP_SELECT:
        rc = af_err_set(err, AF_ERR_NOTFOUND, "base image %s has no manifest for %s", from,
                        af_platform_format(&a->platform, p, sizeof p));
        break;
    case AF_IMAGE_STEP_NESTED:
        rc = af_err_set(err, AF_ERR_PARSE, "base image %s: nested index is not supported", from);
        break;
    case AF_IMAGE_STEP_PARSE:
        rc = af_err_prefix(err, AF_ERR_PARSE, "base image %s", from);
        break;
    case AF_IMAGE_STEP_CONFIG:
    case AF_IMAGE_STEP_PLATFORM:
        af_err_prefix(err, rc, "base image %s config", from);
        break;
    default: /* the manifest GETs */
        af_err_prefix(err, rc, "base image %s", from);
        break;
    }
    af_image_release(&img);
    return rc;
}

/* Makes every base layer exist in the target repository. */
static int s_copy_base_layers(af_worker_ctx_t *ctx, af_assemble_args_t *a, af_registry_t *target,
                              const char *repo, af_registry_t *source, const af_ref_t *base_ref,
                              bool same_registry, const s_base_t *base, af_err_t *err)
{
    if (!base->manifest)
        return 0;
    for (size_t i = 0; i < base->manifest->n_layers; i++) {
        const af_descriptor_t *l = &base->manifest->layers[i];
        char sd[32], hs[32];
        int rc = s_cancelled(ctx, err);
        if (rc < 0)
            return rc;
        bool exists = false;
        rc = af_registry_blob_exists(target, repo, l->digest, &exists, err);
        if (rc < 0)
            return rc;
        if (exists) {
            af_worker_log(ctx, "base layer %s already in %s", s_short(l->digest, sd, sizeof sd),
                          repo);
            continue;
        }
        if (same_registry) {
            bool mounted = false;
            rc = af_registry_blob_mount(target, repo, l->digest, base_ref->repository, &mounted,
                                        err);
            if (rc < 0)
                return rc;
            if (mounted) {
                af_worker_log(ctx, "base layer %s mounted from %s",
                              s_short(l->digest, sd, sizeof sd), base_ref->repository);
                continue;
            }
        }
        char path[AF_CONTEXT_MAX_PATH];
        snprintf(path, sizeof path, "%s/base-layer-%zu", a->job_dir, i);
        af_worker_log(ctx, "copying base layer %s %s", s_short(l->digest, sd, sizeof sd),
                      s_human((uint64_t)l->size, hs, sizeof hs));
        rc = af_registry_blob_fetch(source, base_ref->repository, l->digest, path,
                                    (uint64_t)l->size, err);
        if (rc == 0)
            rc = af_registry_blob_push(target, repo, l->digest, path, (uint64_t)l->size, NULL, NULL,
                                       NULL, err);
        unlink(path);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* One assembly in progress: what af_assemble_run's steps share. */
typedef struct {
    af_worker_ctx_t *ctx;
    af_assemble_args_t *a;
    const af_recipe_t *r;
    int64_t sde;
    bool docker, zstd;
    af_registry_t *reg, *base_reg;
    af_ref_t target;
    const char *repo;
    s_base_t base;
    af_layer_entry_t *entries;
    char **srcs;
    char layer_path[AF_CONTEXT_MAX_PATH];
    af_layer_result_t layer;
    bool have_layer;
    const char *diff_ids[1];
    size_t n_diff_ids;
    char *config;
    size_t config_len;
    af_descriptor_t config_desc;
    char config_path[AF_CONTEXT_MAX_PATH];
    af_descriptor_t *layers;
    char *manifest;
} s_asm_t;

static void s_asm_free(s_asm_t *m)
{
    for (size_t i = 0; m->srcs && i < m->r->n_copy; i++)
        free(m->srcs[i]);
    free(m->srcs);
    free(m->entries);
    free(m->layers);
    free(m->config);
    free(m->manifest);
    s_base_clear(&m->base);
    af_registry_destroy(&m->base_reg);
    af_registry_destroy(&m->reg);
}

/* What the BUILD asks of the layer, checked before any work; then the
 * target registry. */
static int s_asm_target(s_asm_t *m, af_err_t *err)
{
    if (m->zstd && m->docker)
        return af_err_set(
            err, AF_ERR_INVAL,
            "zstd layers need OCI manifests (manifest_format docker has no zstd type)");
    int rc = af_compress_check_level(m->a->target.compression, m->a->target.compression_level, err);
    if (rc < 0)
        return rc;
    if (!(m->reg = af_push_target_open(&m->a->target, &m->target, err)))
        return err && err->code ? err->code : AF_ERR_NET;
    af_worker_bind_registry(m->ctx, m->reg);
    m->repo = m->target.repository;
    return 0;
}

/* The base image, unless scratch: resolved, its layers copied over. */
static int s_asm_base(s_asm_t *m, af_err_t *err)
{
    const char *from = m->r->from;
    if (!from || !from[0] || !strcmp(from, "scratch"))
        return 0;
    af_ref_t base_ref;
    int rc = af_ref_parse(from, &base_ref, err);
    if (rc < 0)
        return rc;
    bool same_registry = !strcmp(base_ref.registry, m->target.registry);
    af_registry_t *src = m->reg;
    if (!same_registry) {
        af_registry_opts_t anon = {0};
        if (!(m->base_reg = af_registry_new(base_ref.registry, &anon, err)))
            return err && err->code ? err->code : AF_ERR_NET;
        af_worker_bind_registry(m->ctx, m->base_reg);
        src = m->base_reg;
    }
    if ((rc = s_resolve_base(m->ctx, m->a, src, &base_ref, from, &m->base, err)) < 0)
        return rc;
    return s_copy_base_layers(m->ctx, m->a, m->reg, m->repo, src, &base_ref, same_registry,
                              &m->base, err);
}

/* Our layer: image.copy, packed into the job dir. */
static int s_asm_layer(s_asm_t *m, af_err_t *err)
{
    const af_recipe_t *r = m->r;
    snprintf(m->layer_path, sizeof m->layer_path, "%s/layer.tar.%s", m->a->job_dir,
             m->zstd ? "zst" : "gz");
    if (!r->n_copy)
        return 0;
    m->entries = calloc(r->n_copy, sizeof *m->entries);
    m->srcs = calloc(r->n_copy, sizeof *m->srcs);
    if (!m->entries || !m->srcs)
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n_copy; i++) {
        if (asprintf(&m->srcs[i], "%s/%s", m->a->ctx_dir, r->copy[i].src) < 0) {
            m->srcs[i] = NULL;
            return af_err_set(err, AF_ERR_NOMEM, "out of memory");
        }
        m->entries[i].src = m->srcs[i];
        m->entries[i].dest = r->copy[i].dest;
    }
    af_layer_opts_t lopts = {.algo = m->a->target.compression,
                             .level = m->a->target.compression_level};
    af_worker_log(m->ctx, "packing layer (%zu copy entr%s, %s, %d threads)", r->n_copy,
                  r->n_copy == 1 ? "y" : "ies", af_compress_name(lopts.algo),
                  af_compress_threads(0));
    int rc = af_archive_write_layer(m->a->ctx_dir, m->entries, r->n_copy, m->layer_path, m->sde,
                                    &lopts, &m->layer, err);
    if (rc < 0) {
        af_err_prefix(err, rc, "image.copy");
        return rc;
    }
    m->have_layer = true;
    m->diff_ids[m->n_diff_ids++] = m->layer.diff_id;
    return 0;
}

/* The image config, digested and written to the job dir. */
static int s_asm_config(s_asm_t *m, af_err_t *err)
{
    const af_recipe_t *r = m->r;
    af_image_spec_t spec = {
        .platform = m->a->platform,
        .created = m->sde,
        .entrypoint = (const char *const *)r->entrypoint,
        .n_entrypoint = r->n_entrypoint,
        .set_entrypoint = r->has_entrypoint,
        .cmd = (const char *const *)r->cmd,
        .n_cmd = r->n_cmd,
        .set_cmd = r->has_cmd,
        .env = r->env,
        .n_env = r->n_env,
        .workdir = r->workdir,
        .user = r->user,
        .labels = r->labels,
        .n_labels = r->n_labels,
        .created_by = S_CREATED_BY,
    };
    m->config = af_oci_config_build(&spec, m->base.config, m->base.config_len, m->diff_ids,
                                    m->n_diff_ids, &m->config_len, err);
    if (!m->config)
        return err && err->code ? err->code : AF_ERR_PARSE;
    m->config_desc.size = (int64_t)m->config_len;
    snprintf(m->config_desc.media_type, sizeof m->config_desc.media_type, "%s",
             m->docker ? AF_MT_DOCKER_CONFIG : AF_MT_OCI_CONFIG);
    int rc = af_digest_buffer(m->config, m->config_len, m->config_desc.digest);
    if (rc < 0)
        return rc;
    snprintf(m->config_path, sizeof m->config_path, "%s/config.json", m->a->job_dir);
    return s_write_file(m->config_path, m->config, m->config_len, err);
}

/* Blobs: the config, then our layer. */
static int s_asm_blobs(s_asm_t *m, af_err_t *err)
{
    char sd[32], hs[32];
    af_worker_log(m->ctx, "pushing config %s %s", s_short(m->config_desc.digest, sd, sizeof sd),
                  s_human(m->config_len, hs, sizeof hs));
    int rc = af_registry_blob_push(m->reg, m->repo, m->config_desc.digest, m->config_path,
                                   m->config_len, NULL, NULL, NULL, err);
    if (rc < 0 || !m->have_layer)
        return rc;
    if ((rc = s_cancelled(m->ctx, err)) < 0)
        return rc;
    af_worker_log(m->ctx, "pushing layer %s %s", s_short(m->layer.digest, sd, sizeof sd),
                  s_human(m->layer.size, hs, sizeof hs));
    return af_registry_blob_push(m->reg, m->repo, m->layer.digest, m->layer_path, m->layer.size,
                                 NULL, NULL, NULL, err);
}

/* The manifest's layers: the base's first, then ours. *N_P their count. */
static int s_asm_layers(s_asm_t *m, size_t *n_p, af_err_t *err)
{
    size_t n_base = m->base.manifest ? m->base.manifest->n_layers : 0;
    size_t n = n_base + (m->have_layer ? 1 : 0);
    if (!(m->layers = calloc(n ? n : 1, sizeof *m->layers)))
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_base; i++) {
        af_descriptor_t *d = &m->layers[i];
        *d = m->base.manifest->layers[i];
        d->has_platform = false;
        /* the same gzip bytes under Docker's name; anything else (zstd,
         * uncompressed) has none and the manifest builder refuses it */
        if (m->docker && !strcmp(d->media_type, AF_MT_OCI_LAYER_GZIP))
            snprintf(d->media_type, sizeof d->media_type, "%s", AF_MT_DOCKER_LAYER_GZIP);
    }
    if (m->have_layer) {
        af_descriptor_t *d = &m->layers[n_base];
        snprintf(d->media_type, sizeof d->media_type, "%s",
                 m->docker ? AF_MT_DOCKER_LAYER_GZIP
                           : (m->zstd ? AF_MT_OCI_LAYER_ZSTD : AF_MT_OCI_LAYER_GZIP));
        snprintf(d->digest, sizeof d->digest, "%s", m->layer.digest);
        d->size = (int64_t)m->layer.size;
    }
    *n_p = n;
    return 0;
}

/* The manifest, PUT by digest, and the report to the loop. */
static int s_asm_manifest(s_asm_t *m, af_err_t *err)
{
    size_t n_layers = 0, len = 0;
    int rc = s_asm_layers(m, &n_layers, err);
    if (rc < 0)
        return rc;
    const char *mt = m->docker ? AF_MT_DOCKER_MANIFEST : AF_MT_OCI_MANIFEST;
    m->manifest =
        m->docker
            ? af_oci_docker_manifest_build(&m->config_desc, m->layers, n_layers, &len, err)
            : af_oci_manifest_build(&m->config_desc, m->layers, n_layers, m->a->target.annotations,
                                    m->a->target.n_annotations, &len, err);
    if (!m->manifest)
        return err && err->code ? err->code : AF_ERR_PARSE;
    char digest[AF_DIGEST_STR_MAX], put_digest[AF_DIGEST_STR_MAX];
    if ((rc = af_digest_buffer(m->manifest, len, digest)) < 0 ||
        (rc = s_cancelled(m->ctx, err)) < 0 ||
        (rc = af_registry_manifest_put(m->reg, m->repo, digest, mt, m->manifest, len, put_digest,
                                       err)) < 0)
        return rc;
    af_worker_log(m->ctx, "pushed manifest %s (%zu bytes) to %s", digest, len,
                  m->a->target.repository);
    rc = af_push_target_report(m->ctx, digest, mt, len, err);
    if (rc == 0)
        rc = af_push_target_report_pushed(m->ctx, af_registry_pushed_bytes(m->reg), err);
    return rc;
}

int af_assemble_run(af_worker_ctx_t *ctx, void *varg, af_err_t *err)
{
    af_assemble_args_t *a = (af_assemble_args_t *)varg;
    assert(a && a->recipe && a->target.repository && a->ctx_dir && a->job_dir);
    s_asm_t m = {
        .ctx = ctx,
        .a = a,
        .r = a->recipe,
        .sde = a->source_date_epoch < 0 ? 0 : a->source_date_epoch,
        .docker = a->target.docker,
        .zstd = a->target.compression == AF_COMPRESS_ZSTD,
    };
    int rc;
    if ((rc = s_asm_target(&m, err)) < 0 || (rc = s_asm_base(&m, err)) < 0 ||
        (rc = s_cancelled(ctx, err)) < 0 || (rc = s_asm_layer(&m, err)) < 0 ||
        (rc = s_cancelled(ctx, err)) < 0 || (rc = s_asm_config(&m, err)) < 0 ||
        (rc = s_asm_blobs(&m, err)) < 0)
        goto out;
    rc = s_asm_manifest(&m, err);
out:
    s_asm_free(&m);
    return rc;
}
