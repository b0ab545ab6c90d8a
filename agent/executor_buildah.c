/* executor_buildah.c -- Dockerfile slices built with buildah on the host.
 *
 * Three steps, each visible as STATUS/LOG:
 *  1. `buildah build` (argv from engine.c) with a private storage under the
 *     job dir (job/buildah/{root,run,tmp}, vfs driver, chroot isolation,
 *     --timestamp SOURCE_DATE_EPOCH), the image tagged with a fixed local
 *     name that exists only in that private storage.
 *  2. `buildah push IMAGE oci:job/buildah/oci`: a local OCI layout, so
 *     buildah never talks to the target registry (a docker:// push would
 *     write a tag).
 *  3. A worker thread pushes the layout's blobs and then the manifest's
 *     exact bytes to the job's repository BY DIGEST with common/registry,
 *     after checking the manifest digest, the blobs' sizes and that the
 *     config's os/architecture/variant are the slice's platform.
 * Cancel kills the engine's process group (SIGTERM, SIGKILL after the
 * grace) or stops the worker; the storage goes with the job dir, which the
 * job removes whatever the outcome, so no image, layer or container is
 * left behind. Credentials reach buildah (for FROM images on the target
 * registry) only through a 0600 auth file in the job dir, never argv. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "engine.h"
#include "executor.h"
#include "job.h"
#include "log.h"
#include "oci.h"
#include "ref.h"
#include "registry.h"

#define S_IMAGE "localhost/archfarm-slice:latest"

static const char *const s_kinds[] = {"dockerfile", NULL};

typedef struct {
    char dir[AF_CONTEXT_MAX_PATH];
    char root[AF_CONTEXT_MAX_PATH];
    char run[AF_CONTEXT_MAX_PATH];
    char tmp[AF_CONTEXT_MAX_PATH];
    char iid[AF_CONTEXT_MAX_PATH];
    char oci[AF_CONTEXT_MAX_PATH];
    char digest[AF_CONTEXT_MAX_PATH];
    char auth[AF_CONTEXT_MAX_PATH];
    bool have_auth;
    char **envp;
    af_engine_spec_t spec;
} s_buildah_t;

static bool s_probe(void)
{
    return af_engine_which("buildah", NULL, 0);
}

static void s_spec(af_job_t *job, s_buildah_t *st)
{
    af_engine_spec_from_build(&st->spec, job);
    st->spec.storage_root = st->root;
    st->spec.run_root = st->run;
    st->spec.image = S_IMAGE;
    st->spec.iid_file = st->iid;
    st->spec.auth_file = st->have_auth ? st->auth : NULL;
    st->spec.oci_dir = st->oci;
    st->spec.digest_file = st->digest;
}

/* --- step 3: the layout's blobs and manifest, by digest ------------------ */

typedef struct {
    char *oci_dir;
    char *digest_file;
    af_push_target_t target;
    af_platform_t platform;
} s_upload_t;

static void s_upload_free(void *varg)
{
    s_upload_t *a = (s_upload_t *)varg;
    if (!a)
        return;
    af_push_target_clear(&a->target);
    free(a->oci_dir);
    free(a->digest_file);
    free(a);
}

static void s_blob_path(const s_upload_t *a, const char *digest, char *out, size_t len)
{
    snprintf(out, len, "%s/blobs/sha256/%s", a->oci_dir, af_digest_hex(digest));
}

/* A blob of the layout: exists, is a regular file of the declared size. */
static int s_check_blob(const s_upload_t *a, const af_descriptor_t *d, char *path, size_t len,
                        af_err_t *err)
{
    if (!af_digest_valid(d->digest) || strncmp(d->digest, "sha256:", 7))
        return af_err_set(err, AF_ERR_PARSE, "buildah's manifest names a bad digest");
    s_blob_path(a, d->digest, path, len);
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return af_err_set(err, AF_ERR_NOTFOUND, "blob %s missing from buildah's OCI layout",
                          d->digest);
    if (d->size < 0 || (uint64_t)st.st_size != (uint64_t)d->size)
        return af_err_set(err, AF_ERR_DIGEST, "blob %s is %lld bytes, the manifest says %lld",
                          d->digest, (long long)st.st_size, (long long)d->size);
    return 0;
}

/* Long (about 85 lines): the worker that pushes what buildah wrote (the
 * config, each layer, the manifest, by digest, checking each blob's size
 * against the manifest) is one sequence over one registry client. */
static int s_upload(af_worker_ctx_t *ctx, void *varg, af_err_t *err)
{
    s_upload_t *a = (s_upload_t *)varg;
    af_registry_t *reg = NULL;
    af_oci_doc_t *doc = NULL;
    char *manifest = NULL, *config = NULL;
    size_t len = 0, config_len = 0;
    char digest[AF_DIGEST_STR_MAX], got[AF_DIGEST_STR_MAX], path[AF_CONTEXT_MAX_PATH];
    af_ref_t ref;
    int rc;

    if ((rc = af_engine_digest_file_read(a->digest_file, digest, err)) < 0)
        goto out;
    s_blob_path(a, digest, path, sizeof path);
    if ((rc = af_engine_file_read(path, AF_MANIFEST_MAX_BYTES, &manifest, &len, err)) < 0)
        goto out;
    if ((rc = af_digest_buffer(manifest, len, got)) < 0)
        goto out;
    if (strcmp(got, digest)) {
        rc = af_err_set(err, AF_ERR_DIGEST, "buildah's manifest is %s, its digest file says %s",
                        got, digest);
        goto out;
    }
    if (!(doc = af_oci_doc_parse(manifest, len, AF_MT_OCI_MANIFEST, err))) {
        rc = err && err->code ? err->code : AF_ERR_PARSE;
        goto out;
    }
    if (doc->is_index) {
        rc = af_err_set(err, AF_ERR_UNSUPPORTED, "buildah wrote an index, not an image manifest");
        goto out;
    }
    /* the config says which platform was built */
    if ((rc = s_check_blob(a, &doc->config, path, sizeof path, err)) < 0 ||
        (rc = af_engine_file_read(path, AF_CONFIG_MAX_BYTES, &config, &config_len, err)) < 0 ||
        (rc = af_digest_buffer(config, config_len, got)) < 0)
        goto out;
    if (strcmp(got, doc->config.digest)) {
        rc = af_err_set(err, AF_ERR_DIGEST, "config blob %s does not match its digest",
                        doc->config.digest);
        goto out;
    }
    if ((rc = af_engine_check_platform("buildah", config, config_len, &a->platform, err)) < 0)
        goto out;

    if (!(reg = af_push_target_open(&a->target, &ref, err))) {
        rc = err && err->code ? err->code : AF_ERR_NET;
        goto out;
    }
    af_worker_bind_registry(ctx, reg);
    for (size_t i = 0; i < doc->n_layers; i++) {
        if (af_worker_cancelled(ctx)) {
            rc = af_err_set(err, AF_ERR_CANCELLED, "cancelled");
            goto out;
        }
        const af_descriptor_t *l = &doc->layers[i];
        if ((rc = s_check_blob(a, l, path, sizeof path, err)) < 0)
            goto out;
        af_worker_log(ctx, "pushing layer %zu/%zu %s (%lld bytes)", i + 1, doc->n_layers, l->digest,
                      (long long)l->size);
        if ((rc = af_registry_blob_push(reg, ref.repository, l->digest, path, (uint64_t)l->size,
                                        NULL, NULL, NULL, err)) < 0)
            goto out;
    }
    if (af_worker_cancelled(ctx)) {
        rc = af_err_set(err, AF_ERR_CANCELLED, "cancelled");
        goto out;
    }
    s_blob_path(a, doc->config.digest, path, sizeof path);
    if ((rc = af_registry_blob_push(reg, ref.repository, doc->config.digest, path,
                                    (uint64_t)config_len, NULL, NULL, NULL, err)) < 0)
        goto out;
    if ((rc = af_registry_manifest_put(reg, ref.repository, digest, doc->media_type, manifest, len,
                                       got, err)) < 0)
        goto out;
    af_worker_log(ctx, "pushed manifest %s (%zu bytes) to %s", digest, len, a->target.repository);
    rc = af_push_target_report(ctx, digest, doc->media_type, len, err);
    if (rc == 0)
        rc = af_push_target_report_pushed(ctx, af_registry_pushed_bytes(reg), err);
out:
    af_oci_doc_destroy(&doc);
    free(manifest);
    free(config);
    af_registry_destroy(&reg);
    return rc;
}

static void s_on_push_exit(af_engine_run_t *run, af_job_t *job, int status, bool cancelled)
{
    s_buildah_t *st = af_engine_run_data(run);
    if (cancelled || status != 0) {
        af_engine_run_fail_status(run, job, "buildah push", status, false);
        return;
    }
    const af_msg_t *b = af_job_build(job);
    s_upload_t *a = calloc(1, sizeof *a);
    bool ok = a != NULL;
    if (ok) {
        a->oci_dir = strdup(st->oci);
        a->digest_file = strdup(st->digest);
        a->platform = *af_job_platform(job);
        ok = a->oci_dir && a->digest_file && af_push_target_from_build(&a->target, b) == 0;
    }
    af_err_t err = {0};
    if (!ok) {
        s_upload_free(a);
        af_engine_run_fail(run, job, "infra", "out of memory");
        return;
    }
    if (af_engine_run_worker(run, s_upload, a, s_upload_free, &err) < 0)
        af_engine_run_fail(run, job, "infra", "%s", af_err_msg(&err, AF_ERR_NOMEM));
}

static void s_on_build_exit(af_engine_run_t *run, af_job_t *job, int status, bool cancelled)
{
    s_buildah_t *st = af_engine_run_data(run);
    if (cancelled || status != 0) {
        af_engine_run_fail_status(run, job, "buildah build", status, true);
        return;
    }
    af_job_status(job, "pushing", af_job_build(job)->repository);
    af_err_t err = {0};
    char **argv = af_engine_argv_buildah_push(&st->spec, &err);
    int rc =
        argv ? af_engine_run_spawn(run, argv, st->envp, st->dir, s_on_push_exit, &err) : err.code;
    af_engine_argv_free(&argv);
    if (rc < 0)
        af_engine_run_fail(run, job, "infra", "%s", af_err_msg(&err, rc));
}

static int s_mkdir(const char *path, af_err_t *err)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return af_err_set(err, AF_ERR_IO, "%s: %s", path, strerror(errno));
    return 0;
}

static int s_start(af_job_t *job, af_err_t *err)
{
    const af_msg_t *b = af_job_build(job);
    af_engine_run_t *run = af_engine_run_attach(job, sizeof(s_buildah_t), err);
    if (!run)
        return AF_ERR_NOMEM;
    s_buildah_t *st = af_engine_run_data(run);

    const char *jd = af_job_dir(job);
    snprintf(st->dir, sizeof st->dir, "%s/buildah", jd);
    snprintf(st->root, sizeof st->root, "%s/root", st->dir);
    snprintf(st->run, sizeof st->run, "%s/run", st->dir);
    snprintf(st->tmp, sizeof st->tmp, "%s/tmp", st->dir);
    snprintf(st->iid, sizeof st->iid, "%s/iid", st->dir);
    snprintf(st->oci, sizeof st->oci, "%s/oci", st->dir);
    snprintf(st->digest, sizeof st->digest, "%s/digest", st->dir);
    snprintf(st->auth, sizeof st->auth, "%s/auth.json", st->dir);
    int rc;
    if ((rc = s_mkdir(st->dir, err)) < 0 || (rc = s_mkdir(st->root, err)) < 0 ||
        (rc = s_mkdir(st->run, err)) < 0 || (rc = s_mkdir(st->tmp, err)) < 0)
        return rc;
    if (b->registry_username[0]) {
        if ((rc = af_engine_auth_file_write(st->auth, b->repository, b->registry_username,
                                            b->registry_password, err)) < 0)
            return rc;
        st->have_auth = true;
    }
    s_spec(job, st);
    if ((rc = af_engine_spec_check(&st->spec, err)) < 0)
        return rc;
    char df[AF_CONTEXT_MAX_PATH];
    const char *rel = b->recipe_path[0] ? b->recipe_path : "Dockerfile";
    snprintf(df, sizeof df, "%s/%s", af_job_ctx_dir(job), rel);
    struct stat sb;
    if (stat(df, &sb) < 0 || !S_ISREG(sb.st_mode))
        return af_err_set(err, AF_ERR_NOTFOUND, "%s: no such file in the build context", rel);
    af_engine_log_ignored_args(job, b->build_args, b->n_build_args);
    if (!(st->envp = af_engine_env_new(st->tmp, NULL, err)))
        return err && err->code ? err->code : AF_ERR_NOMEM;
    char **argv = af_engine_argv_buildah_build(&st->spec, err);
    if (!argv)
        return err && err->code ? err->code : AF_ERR_INVAL;
    rc = af_engine_run_spawn(run, argv, st->envp, af_job_ctx_dir(job), s_on_build_exit, err);
    af_engine_argv_free(&argv);
    return rc;
}

static void s_cancel(af_job_t *job)
{
    af_engine_run_cancel(af_job_exec_data(job));
}

static void s_release(af_job_t *job)
{
    af_engine_run_t *run = af_job_exec_data(job);
    if (!run)
        return;
    s_buildah_t *st = af_engine_run_data(run);
    af_engine_run_destroy(&run);
    if (st) {
        af_engine_env_free(&st->envp);
        if (st->have_auth)
            unlink(st->auth); /* the job dir goes too; do not wait for it */
        free(st);
    }
    af_job_set_exec_data(job, NULL);
}

const af_executor_t af_executor_buildah = {
    .name = "buildah",
    .kinds = s_kinds,
    .probe = s_probe,
    .start = s_start,
    .cancel = s_cancel,
    .release = s_release,
};
