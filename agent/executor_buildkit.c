/* executor_buildkit.c -- the BuildKit-style executor body shared by
 * executor_buildctl.c and executor_docker.c (they differ only in the argv
 * builder and the engine name): private DOCKER_CONFIG, the build step, then
 * the verify worker. See engine.h. */
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

/* --- BuildKit-style executors ------------------------------------------------ */

typedef struct {
    char dir[AF_CONTEXT_MAX_PATH];
    char meta[AF_CONTEXT_MAX_PATH];
    char docker_config[AF_CONTEXT_MAX_PATH];
    char engine[16];
    char **envp;
    af_engine_spec_t spec;
} s_buildkit_t;

/* Links the node's docker CLI state (plugins, builders, contexts) into the
 * private DOCKER_CONFIG so that only the credentials differ. */
static void s_link_docker_state(const char *dir)
{
    char src_dir[AF_CONTEXT_MAX_PATH];
    const char *dc = getenv("DOCKER_CONFIG"), *home = getenv("HOME");
    if (dc && dc[0])
        snprintf(src_dir, sizeof src_dir, "%s", dc);
    else if (home && home[0])
        snprintf(src_dir, sizeof src_dir, "%s/.docker", home);
    else
        return;
    const char *names[] = {"cli-plugins", "buildx", "contexts"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char src[AF_CONTEXT_MAX_PATH + 32], dst[AF_CONTEXT_MAX_PATH + 32];
        snprintf(src, sizeof src, "%s/%s", src_dir, names[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, names[i]);
        if (access(src, F_OK) == 0 && symlink(src, dst) < 0)
            af_warn("cannot link %s: %s", src, strerror(errno));
    }
}

static void s_on_verify_start(af_engine_run_t *run, af_job_t *job, int status, bool cancelled)
{
    s_buildkit_t *st = af_engine_run_data(run);
    if (cancelled || status != 0) {
        char what[48];
        snprintf(what, sizeof what, "%s build", st->engine);
        af_engine_run_fail_status(run, job, what, status, true);
        return;
    }
    af_err_t err = {0};
    af_engine_image_t img;
    if (af_engine_metadata_read(st->meta, &img, &err) < 0) {
        af_engine_run_fail(run, job, "infra", "%s: %s", st->engine, af_err_msg(&err, AF_ERR_PARSE));
        return;
    }
    const af_msg_t *b = af_job_build(job);
    af_job_status(job, "pushing", b->repository);
    af_engine_verify_args_t *a = af_engine_verify_args_new(b, af_job_platform(job), &img);
    if (!a) {
        af_engine_run_fail(run, job, "infra", "out of memory");
        return;
    }
    if (af_engine_run_worker(run, af_engine_verify_worker, a, af_engine_verify_args_free, &err) < 0)
        af_engine_run_fail(run, job, "infra", "%s", af_err_msg(&err, AF_ERR_NOMEM));
}

int af_engine_buildkit_start(af_job_t *job, const char *engine, af_engine_argv_fn *argv_fn,
                             af_err_t *err)
{
    const af_msg_t *b = af_job_build(job);
    af_engine_run_t *run = af_engine_run_attach(job, sizeof(s_buildkit_t), err);
    if (!run)
        return AF_ERR_NOMEM;
    s_buildkit_t *st = af_engine_run_data(run);
    snprintf(st->engine, sizeof st->engine, "%s", engine);
    snprintf(st->dir, sizeof st->dir, "%s/engine", af_job_dir(job));
    snprintf(st->meta, sizeof st->meta, "%s/metadata.json", st->dir);
    if (mkdir(st->dir, 0700) < 0 && errno != EEXIST)
        return af_err_set(err, AF_ERR_IO, "%s: %s", st->dir, strerror(errno));
    int rc;
    char env_dc[AF_CONTEXT_MAX_PATH + 16];
    const char *extra[2] = {NULL, NULL};
    if (b->registry_username[0]) {
        char cfg[AF_CONTEXT_MAX_PATH + 16];
        snprintf(st->docker_config, sizeof st->docker_config, "%s/docker", st->dir);
        snprintf(cfg, sizeof cfg, "%s/config.json", st->docker_config);
        if (mkdir(st->docker_config, 0700) < 0 && errno != EEXIST)
            return af_err_set(err, AF_ERR_IO, "%s: %s", st->docker_config, strerror(errno));
        if ((rc = af_engine_auth_file_write(cfg, b->repository, b->registry_username,
                                            b->registry_password, err)) < 0)
            return rc;
        if (!strcmp(engine, "docker"))
            s_link_docker_state(st->docker_config);
        snprintf(env_dc, sizeof env_dc, "DOCKER_CONFIG=%s", st->docker_config);
        extra[0] = env_dc;
    }
    af_engine_spec_from_build(&st->spec, job);
    st->spec.metadata_file = st->meta;
    af_engine_log_ignored_args(job, b->build_args, b->n_build_args);
    if (!(st->envp = af_engine_env_new(NULL, extra, err)))
        return err && err->code ? err->code : AF_ERR_NOMEM;
    char **argv = argv_fn(&st->spec, err);
    if (!argv)
        return err && err->code ? err->code : AF_ERR_INVAL;
    rc = af_engine_run_spawn(run, argv, st->envp, af_job_ctx_dir(job), s_on_verify_start, err);
    af_engine_argv_free(&argv);
    return rc;
}

void af_engine_buildkit_cancel(af_job_t *job)
{
    af_engine_run_cancel(af_job_exec_data(job));
}

void af_engine_buildkit_release(af_job_t *job)
{
    af_engine_run_t *run = af_job_exec_data(job);
    if (!run)
        return;
    s_buildkit_t *st = af_engine_run_data(run);
    af_engine_run_destroy(&run);
    if (st) {
        af_engine_env_free(&st->envp);
        if (st->docker_config[0]) {
            char cfg[AF_CONTEXT_MAX_PATH + 16];
            snprintf(cfg, sizeof cfg, "%s/config.json", st->docker_config);
            unlink(cfg);
        }
        free(st);
    }
    af_job_set_exec_data(job, NULL);
}
