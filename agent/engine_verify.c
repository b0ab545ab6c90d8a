/* engine_verify.c -- the worker that checks what an engine pushed: the
 * manifest exists in the registry and its config's platform is the slice's.
 * See engine.h. */
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
#include "image.h"
#include "job.h"
#include "log.h"
#include "oci.h"
#include "process.h"
#include "ref.h"
#include "registry.h"

extern char **environ;

/* --- checking what an engine pushed ---------------------------------------- */

int af_engine_check_platform(const char *engine, const char *config, size_t len,
                             const af_platform_t *want, af_err_t *err)
{
    af_platform_t got;
    int rc = af_oci_config_platform(config, len, &got, err);
    if (rc < 0)
        return rc;
    if (!af_platform_equal(&got, want)) {
        char g[AF_PLATFORM_STR_MAX], w[AF_PLATFORM_STR_MAX];
        return af_err_set(err, AF_ERR_INVAL, "%s built %s, not %s", engine,
                          af_platform_format(&got, g, sizeof g),
                          af_platform_format(want, w, sizeof w));
    }
    return 0;
}

af_engine_verify_args_t *af_engine_verify_args_new(const af_msg_t *build,
                                                   const af_platform_t *platform,
                                                   const af_engine_image_t *reported)
{
    af_engine_verify_args_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    if (af_push_target_from_build(&a->target, build) < 0) {
        free(a);
        return NULL;
    }
    a->platform = *platform;
    a->reported = *reported;
    return a;
}

void af_engine_verify_args_free(void *varg)
{
    af_engine_verify_args_t *a = (af_engine_verify_args_t *)varg;
    if (!a)
        return;
    af_push_target_clear(&a->target);
    free(a);
}

int af_engine_verify_worker(af_worker_ctx_t *ctx, void *varg, af_err_t *err)
{
    af_engine_verify_args_t *a = (af_engine_verify_args_t *)varg;
    af_image_t img = {0};
    af_ref_t ref;
    int rc;
    af_registry_t *reg = af_push_target_open(&a->target, &ref, err);
    if (!reg)
        return err && err->code ? err->code : AF_ERR_NET;
    af_worker_bind_registry(ctx, reg);
    af_worker_log(ctx, "checking %s@%s", a->target.repository, a->reported.digest);
    if ((rc = af_image_get(reg, ref.repository, a->reported.digest, NULL, 0, &img, err)) < 0) {
        if (img.failed == AF_IMAGE_STEP_FETCH)
            af_err_prefix(err, rc, "the engine's image is not in %s", a->target.repository);
        goto out;
    }
    if (img.doc->is_index || !af_oci_is_manifest(img.doc->media_type)) {
        rc = af_err_set(err, AF_ERR_UNSUPPORTED,
                        "%s@%s is a %s, not a single-platform image manifest", a->target.repository,
                        img.digest, img.doc->media_type);
        goto out;
    }
    if ((rc = af_image_config(reg, ref.repository, &img, err)) < 0)
        goto out;
    if (!af_platform_equal(&img.platform, &a->platform)) {
        char g[AF_PLATFORM_STR_MAX], w[AF_PLATFORM_STR_MAX];
        rc = af_err_set(err, AF_ERR_INVAL, "the engine built %s, not %s",
                        af_platform_format(&img.platform, g, sizeof g),
                        af_platform_format(&a->platform, w, sizeof w));
        goto out;
    }
    rc = af_push_target_report(ctx, img.digest, img.doc->media_type, img.len, err);
out:
    af_image_release(&img);
    af_registry_destroy(&reg);
    return rc;
}

void af_engine_log_ignored_args(af_job_t *job, const af_kv_t *args, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!af_engine_is_platform_arg(args[i].key))
            continue;
        char line[AF_MAX_NAME + 96];
        snprintf(line, sizeof line,
                 "build arg %s ignored: the platform variables come from --platform", args[i].key);
        af_job_log(job, "agent", line);
    }
}
