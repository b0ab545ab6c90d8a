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
    char *body = NULL, *mt = NULL;
    size_t len = 0;
    char digest[AF_DIGEST_STR_MAX];
    af_oci_doc_t *doc = NULL;
    int rc;
    af_worker_log(ctx, "resolving base image %s", from);
    rc = af_registry_manifest_get(reg, base_ref->repository, af_ref_reference(base_ref), &body,
                                  &len, &mt, digest, err);
    if (rc < 0) {
        af_err_prefix(err, rc, "base image %s", from);
        goto out;
    }
    doc = af_oci_doc_parse(body, len, mt, err);
    if (!doc) {
        rc = af_err_prefix(err, AF_ERR_PARSE, "base image %s", from);
        goto out;
    }
    if (doc->is_index) {
        const af_descriptor_t *d = af_oci_index_select(doc, &a->platform);
        char p[AF_PLATFORM_STR_MAX];
        if (!d) {
            rc = af_err_set(err, AF_ERR_NOTFOUND, "base image %s has no manifest for %s", from,
                            af_platform_format(&a->platform, p, sizeof p));
            goto out;
        }
        char want[AF_DIGEST_STR_MAX];
        snprintf(want, sizeof want, "%s", d->digest);
        af_oci_doc_destroy(&doc);
        free(body);
        free(mt);
        body = mt = NULL;
        rc = af_registry_manifest_get(reg, base_ref->repository, want, &body, &len, &mt, digest,
                                      err);
        if (rc < 0) {
            af_err_prefix(err, rc, "base image %s (%s)", from,
                          af_platform_format(&a->platform, p, sizeof p));
            goto out;
        }
        doc = af_oci_doc_parse(body, len, mt, err);
        if (!doc) {
            rc = af_err_prefix(err, AF_ERR_PARSE, "base image %s", from);
            goto out;
        }
    }
    if (doc->is_index) {
        rc = af_err_set(err, AF_ERR_PARSE, "base image %s: nested index is not supported", from);
        goto out;
    }
    rc = af_registry_blob_get(reg, base_ref->repository, doc->config.digest, AF_CONFIG_MAX_BYTES,
                              &out->config, &out->config_len, err);
    if (rc < 0) {
        af_err_prefix(err, rc, "base image %s config", from);
        goto out;
    }
    out->manifest = doc;
    doc = NULL;
    rc = 0;
out:
    af_oci_doc_destroy(&doc);
    free(body);
    free(mt);
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

int af_assemble_run(af_worker_ctx_t *ctx, void *varg, af_err_t *err)
{
    af_assemble_args_t *a = (af_assemble_args_t *)varg;
    assert(a && a->recipe && a->target.repository && a->ctx_dir && a->job_dir);
    const af_recipe_t *r = a->recipe;
    int64_t sde = a->source_date_epoch < 0 ? 0 : a->source_date_epoch;
    af_registry_t *reg = NULL, *base_reg = NULL;
    s_base_t base = {0};
    af_layer_entry_t *entries = NULL;
    char **srcs = NULL;
    char *config = NULL, *manifest = NULL;
    af_descriptor_t *layers = NULL;
    const char *diff_ids[1];
    size_t n_diff_ids = 0;
    bool have_layer = false;
    af_layer_result_t layer;
    char sd[32], hs[32];
    int rc;

    /* what the BUILD asks of the layer, checked before any work */
    bool docker = a->target.docker;
    bool zstd = a->target.compression == AF_COMPRESS_ZSTD;
    if (zstd && docker) {
        rc = af_err_set(err, AF_ERR_INVAL,
                        "zstd layers need OCI manifests (manifest_format docker has no zstd type)");
        goto out;
    }
    if ((rc = af_compress_check_level(a->target.compression, a->target.compression_level, err)) < 0)
        goto out;

    af_ref_t target;
    if (!(reg = af_push_target_open(&a->target, &target, err))) {
        rc = err && err->code ? err->code : AF_ERR_NET;
        goto out;
    }
    af_worker_bind_registry(ctx, reg);
    const char *repo = target.repository;

    /* the base image, unless scratch */
    af_ref_t base_ref;
    bool same_registry = false;
    if (r->from && r->from[0] && strcmp(r->from, "scratch") != 0) {
        if ((rc = af_ref_parse(r->from, &base_ref, err)) < 0)
            goto out;
        same_registry = !strcmp(base_ref.registry, target.registry);
        af_registry_t *src = reg;
        if (!same_registry) {
            af_registry_opts_t anon = {0};
            if (!(base_reg = af_registry_new(base_ref.registry, &anon, err))) {
                rc = err && err->code ? err->code : AF_ERR_NET;
                goto out;
            }
            af_worker_bind_registry(ctx, base_reg);
            src = base_reg;
        }
        if ((rc = s_resolve_base(ctx, a, src, &base_ref, r->from, &base, err)) < 0)
            goto out;
        if ((rc = s_copy_base_layers(ctx, a, reg, repo, src, &base_ref, same_registry, &base,
                                     err)) < 0)
            goto out;
    }
    if ((rc = s_cancelled(ctx, err)) < 0)
        goto out;

    /* our layer: image.copy */
    char layer_path[AF_CONTEXT_MAX_PATH];
    snprintf(layer_path, sizeof layer_path, "%s/layer.tar.%s", a->job_dir, zstd ? "zst" : "gz");
    if (r->n_copy) {
        entries = calloc(r->n_copy, sizeof *entries);
        srcs = calloc(r->n_copy, sizeof *srcs);
        if (!entries || !srcs) {
            rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < r->n_copy; i++) {
            if (asprintf(&srcs[i], "%s/%s", a->ctx_dir, r->copy[i].src) < 0) {
                srcs[i] = NULL;
                rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
                goto out;
            }
            entries[i].src = srcs[i];
            entries[i].dest = r->copy[i].dest;
        }
        af_layer_opts_t lopts = {.algo = a->target.compression,
                                 .level = a->target.compression_level};
        af_worker_log(ctx, "packing layer (%zu copy entr%s, %s, %d threads)", r->n_copy,
                      r->n_copy == 1 ? "y" : "ies", af_compress_name(lopts.algo),
                      af_compress_threads(0));
        if ((rc = af_archive_write_layer(a->ctx_dir, entries, r->n_copy, layer_path, sde, &lopts,
                                         &layer, err)) < 0) {
            af_err_prefix(err, rc, "image.copy");
            goto out;
        }
        have_layer = true;
        diff_ids[n_diff_ids++] = layer.diff_id;
    }
    if ((rc = s_cancelled(ctx, err)) < 0)
        goto out;

    /* config */
    af_image_spec_t spec = {
        .platform = a->platform,
        .created = sde,
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
    size_t config_len = 0;
    config = af_oci_config_build(&spec, base.config, base.config_len, diff_ids, n_diff_ids,
                                 &config_len, err);
    if (!config) {
        rc = err && err->code ? err->code : AF_ERR_PARSE;
        goto out;
    }
    af_descriptor_t config_desc = {.size = (int64_t)config_len};
    snprintf(config_desc.media_type, sizeof config_desc.media_type, "%s",
             docker ? AF_MT_DOCKER_CONFIG : AF_MT_OCI_CONFIG);
    if ((rc = af_digest_buffer(config, config_len, config_desc.digest)) < 0)
        goto out;
    char config_path[AF_CONTEXT_MAX_PATH];
    snprintf(config_path, sizeof config_path, "%s/config.json", a->job_dir);
    if ((rc = s_write_file(config_path, config, config_len, err)) < 0)
        goto out;

    /* push blobs: config, then our layer */
    af_worker_log(ctx, "pushing config %s %s", s_short(config_desc.digest, sd, sizeof sd),
                  s_human(config_len, hs, sizeof hs));
    if ((rc = af_registry_blob_push(reg, repo, config_desc.digest, config_path, config_len, NULL,
                                    NULL, NULL, err)) < 0)
        goto out;
    if (have_layer) {
        if ((rc = s_cancelled(ctx, err)) < 0)
            goto out;
        af_worker_log(ctx, "pushing layer %s %s", s_short(layer.digest, sd, sizeof sd),
                      s_human(layer.size, hs, sizeof hs));
        if ((rc = af_registry_blob_push(reg, repo, layer.digest, layer_path, layer.size, NULL, NULL,
                                        NULL, err)) < 0)
            goto out;
    }

    /* manifest: base layers first, then ours */
    size_t n_base = base.manifest ? base.manifest->n_layers : 0;
    size_t n_layers = n_base + (have_layer ? 1 : 0);
    layers = calloc(n_layers ? n_layers : 1, sizeof *layers);
    if (!layers) {
        rc = af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_base; i++) {
        layers[i] = base.manifest->layers[i];
        layers[i].has_platform = false;
        /* the same gzip bytes under Docker's name; anything else (zstd,
         * uncompressed) has none and the manifest builder refuses it */
        if (docker && !strcmp(layers[i].media_type, AF_MT_OCI_LAYER_GZIP))
            snprintf(layers[i].media_type, sizeof layers[i].media_type, "%s",
                     AF_MT_DOCKER_LAYER_GZIP);
    }
    if (have_layer) {
        af_descriptor_t *d = &layers[n_base];
        snprintf(d->media_type, sizeof d->media_type, "%s",
                 docker ? AF_MT_DOCKER_LAYER_GZIP
                        : (zstd ? AF_MT_OCI_LAYER_ZSTD : AF_MT_OCI_LAYER_GZIP));
        snprintf(d->digest, sizeof d->digest, "%s", layer.digest);
        d->size = (int64_t)layer.size;
    }
    size_t manifest_len = 0;
    const char *manifest_mt = docker ? AF_MT_DOCKER_MANIFEST : AF_MT_OCI_MANIFEST;
    manifest =
        docker ? af_oci_docker_manifest_build(&config_desc, layers, n_layers, &manifest_len, err)
               : af_oci_manifest_build(&config_desc, layers, n_layers, a->target.annotations,
                                       a->target.n_annotations, &manifest_len, err);
    if (!manifest) {
        rc = err && err->code ? err->code : AF_ERR_PARSE;
        goto out;
    }
    char digest[AF_DIGEST_STR_MAX], put_digest[AF_DIGEST_STR_MAX];
    if ((rc = af_digest_buffer(manifest, manifest_len, digest)) < 0)
        goto out;
    if ((rc = s_cancelled(ctx, err)) < 0)
        goto out;
    if ((rc = af_registry_manifest_put(reg, repo, digest, manifest_mt, manifest, manifest_len,
                                       put_digest, err)) < 0)
        goto out;
    af_worker_log(ctx, "pushed manifest %s (%zu bytes) to %s", digest, manifest_len,
                  a->target.repository);
    rc = af_push_target_report(ctx, digest, manifest_mt, manifest_len, err);
    if (rc == 0)
        rc = af_push_target_report_pushed(ctx, af_registry_pushed_bytes(reg), err);
out:
    for (size_t i = 0; srcs && i < r->n_copy; i++)
        free(srcs[i]);
    free(srcs);
    free(entries);
    free(layers);
    free(config);
    free(manifest);
    s_base_clear(&base);
    af_registry_destroy(&base_reg);
    af_registry_destroy(&reg);
    return rc;
}
