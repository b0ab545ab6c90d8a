/* executor_native.c -- native recipes (archfarm.yaml) without an engine.
 *
 * start(): parses ctx/<recipe_path>, runs build.run with `sh -c` in ctx/
 * through process.c (own process group, polled by the loop, output as LOG
 * lines), then hands the recipe to an assemble worker thread that packs,
 * pushes and reports the manifest. cancel() kills the step's group
 * (SIGTERM, SIGKILL after the grace period) or asks the worker to stop.
 * The step's environment comes from buildenv.c; credentials never reach
 * it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "assemble.h"
#include "buildenv.h"
#include "executor.h"
#include "fault_injection.h"
#include "job.h"
#include "log.h"
#include "process.h"
#include "recovery.h"
#include "recipe.h"
#include "worker.h"

extern char **environ;

typedef struct {
    af_recipe_t *recipe;
    char **envp;
    af_process_t *proc;
    af_worker_t *assemble;
    bool cancelled;
    char tag[AF_MAX_NAME + 16];
} s_native_t;

static const char *const s_kinds[] = {"native", NULL};

static bool s_probe(void)
{
    return true;
}

/* recipe_path must stay inside the context: relative, no "..". */
static int s_check_recipe_path(const char *p, af_err_t *err)
{
    if (!p[0] || p[0] == '/')
        return af_err_set(err, AF_ERR_UNSAFE, "recipe path \"%s\" must be relative", p);
    const char *s = p;
    while (*s) {
        size_t n = strcspn(s, "/");
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return af_err_set(err, AF_ERR_UNSAFE, "recipe path \"%s\" leaves the context", p);
        s += n;
        while (*s == '/')
            s++;
    }
    return 0;
}

/* Reads ctx/PATH (bounded) and parses it under its context-relative name,
 * so errors read "archfarm.yaml:3:5: ...". */
static af_recipe_t *s_load_recipe(const char *ctx_dir, const char *rel, af_err_t *err)
{
    char path[AF_CONTEXT_MAX_PATH];
    snprintf(path, sizeof path, "%s/%s", ctx_dir, rel);
    FILE *f = fopen(path, "rbe");
    if (!f) {
        af_err_set(err, errno == ENOENT ? AF_ERR_NOTFOUND : AF_ERR_IO, "%s: %s", rel,
                   errno == ENOENT ? "no such file in the build context" : strerror(errno));
        return NULL;
    }
    char *buf = malloc(AF_RECIPE_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t n = fread(buf, 1, AF_RECIPE_MAX_BYTES + 1, f);
    bool failed = ferror(f);
    fclose(f);
    af_recipe_t *r = NULL;
    if (failed)
        af_err_set(err, AF_ERR_IO, "%s: read error", rel);
    else if (n > AF_RECIPE_MAX_BYTES)
        af_err_set(err, AF_ERR_TOOBIG, "%s: larger than %d bytes", rel, AF_RECIPE_MAX_BYTES);
    else
        r = af_recipe_load_buffer(rel, buf, n, err);
    free(buf);
    return r;
}

static void s_on_asm_log(void *arg, const char *line)
{
    af_job_log((af_job_t *)arg, "agent", line);
}

static void s_on_asm_done(void *arg, int code, const char *message, const char *const *outputs,
                          size_t n_outputs)
{
    af_job_t *job = (af_job_t *)arg;
    af_job_outcome_t out;
    /* the build step already exited 0 */
    af_push_target_outcome(&out, code, message, outputs, n_outputs, false, 0);
    af_job_executor_done(job, &out);
}

static void s_start_assemble(af_job_t *job, s_native_t *st)
{
    const af_msg_t *b = af_job_build(job);
    af_job_status(job, "pushing", b->repository);
    af_assemble_args_t *a = af_assemble_args_new();
    bool ok = a != NULL;
    if (ok) {
        a->job = strdup(st->tag);
        a->node = strdup(af_job_node(job));
        a->ctx_dir = strdup(af_job_ctx_dir(job));
        a->job_dir = strdup(af_job_dir(job));
        a->platform = *af_job_platform(job);
        af_fault_wrong_platform(&a->platform); /* tests only: no-op unless set */
        a->source_date_epoch = b->source_date_epoch;
        ok = a->job && a->node && a->ctx_dir && a->job_dir &&
             af_push_target_from_build(&a->target, b) == 0;
        a->recipe = st->recipe; /* the worker thread owns it from here */
        st->recipe = NULL;
    }
    if (ok)
        st->assemble = af_worker_new(af_job_loop(job), af_assemble_run, a, af_assemble_args_free,
                                     s_on_asm_log, s_on_asm_done, job);
    else
        af_assemble_args_free(a);
    if (!st->assemble) {
        af_job_outcome_t out;
        af_job_outcome_fail(&out, "infra", 0, "cannot start the image assembly thread");
        af_job_executor_done(job, &out);
    }
}

static void s_on_line(const char *stream, const char *line, size_t len, void *arg)
{
    af_job_log((af_job_t *)arg, stream, line);
}

static void s_on_exit(int status, void *arg)
{
    af_job_t *job = (af_job_t *)arg;
    s_native_t *st = af_job_exec_data(job);
    char text[96];
    af_debug_job(st->tag, af_job_node(job), "build step %s",
                 af_process_status_text(status, text, sizeof text));
    if (st->cancelled) {
        af_job_outcome_t out;
        af_job_outcome_fail(&out, "cancelled", -1, "cancelled");
        af_job_executor_done(job, &out);
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        s_start_assemble(job, st);
        return;
    }
    af_job_outcome_t out;
    if (WIFEXITED(status))
        af_job_outcome_fail(&out, "build", WEXITSTATUS(status), "build step exited with status %d",
                            WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        af_job_outcome_fail(&out, "build", 128 + WTERMSIG(status),
                            "build step killed by signal %d (%s)", WTERMSIG(status),
                            strsignal(WTERMSIG(status)));
    else
        af_job_outcome_fail(&out, "build", -1, "build step %s",
                            af_process_status_text(status, text, sizeof text));
    af_job_executor_done(job, &out);
}

static int s_mkdir_private(const char *path, af_err_t *err)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return af_err_set(err, AF_ERR_IO, "mkdir %s: %s", path, strerror(errno));
    return 0;
}

static int s_start(af_job_t *job, af_err_t *err)
{
    const af_msg_t *b = af_job_build(job);
    s_native_t *st = calloc(1, sizeof *st);
    if (!st)
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    snprintf(st->tag, sizeof st->tag, "%s/%u", af_job_id(job), af_job_attempt(job));
    af_job_set_exec_data(job, st);
    const char *rel = b->recipe_path[0] ? b->recipe_path : "archfarm.yaml";
    int rc = s_check_recipe_path(rel, err);
    if (rc < 0)
        return rc;
    if (!(st->recipe = s_load_recipe(af_job_ctx_dir(job), rel, err)))
        return err && err->code ? err->code : AF_ERR_PARSE;
    if (!st->recipe->run || !st->recipe->run[0]) {
        af_job_log(job, "agent", "no build step");
        s_start_assemble(job, st);
        return 0;
    }
    af_buildenv_spec_t spec = {
        .target = af_job_platform(job),
        .build = af_job_build_platform(job),
        .source_date_epoch = b->source_date_epoch,
        .recipe_env = st->recipe->build_env,
        .n_recipe_env = st->recipe->n_build_env,
        .build_args = b->build_args,
        .n_build_args = b->n_build_args,
    };
    /* a private TMPDIR and HOME in the job dir: a confined step may write
     * nowhere else, and nothing of them outlives the job */
    char tmp_env[AF_CONTEXT_MAX_PATH + 16], home_env[AF_CONTEXT_MAX_PATH + 16];
    snprintf(tmp_env, sizeof tmp_env, "TMPDIR=%s/tmp", af_job_dir(job));
    snprintf(home_env, sizeof home_env, "HOME=%s/home", af_job_dir(job));
    if (s_mkdir_private(tmp_env + 7, err) < 0 || s_mkdir_private(home_env + 5, err) < 0)
        return err && err->code ? err->code : AF_ERR_IO;
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    /* and a mark that finds a leftover daemon that left the job dir too
     * (af_recovery_kill_job when the job ends and at startup) */
    char mark_env[AF_CONTEXT_MAX_PATH + 64];
    snprintf(mark_env, sizeof mark_env, "%s=%s", AF_RECOVERY_ENV, af_job_dir(job));
    char **base = calloc(n_env + 4, sizeof *base);
    if (!base)
        return af_err_set(err, AF_ERR_NOMEM, "out of memory");
    size_t nb = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "TMPDIR=", 7) && strncmp(environ[i], "HOME=", 5))
            base[nb++] = environ[i];
    base[nb++] = tmp_env;
    base[nb++] = home_env;
    base[nb++] = mark_env;
    st->envp = af_buildenv_new(base, &spec, err);
    free(base);
    if (!st->envp)
        return err && err->code ? err->code : AF_ERR_INVAL;
    af_confine_child_t conf;
    if (af_confine_prepare(af_job_confine(job), af_job_dir(job), &conf, err) < 0)
        return err && err->code ? err->code : AF_ERR_CHILD;
    af_job_log(job, "agent",
               af_confine_abi(af_job_confine(job)) > 0
                   ? "running build step in the context directory (confined: Landlock)"
                   : "running build step in the context directory (NOT confined: no Landlock)");
    st->proc = af_process_new_confined(af_job_loop(job), st->recipe->run, st->envp,
                                       af_job_ctx_dir(job), &conf, s_on_line, s_on_exit, job, err);
    af_confine_child_close(&conf);
    if (!st->proc)
        return err && err->code ? err->code : AF_ERR_CHILD;
    af_job_write_pgid(job, af_process_pid(st->proc));
    return 0;
}

static void s_cancel(af_job_t *job)
{
    s_native_t *st = af_job_exec_data(job);
    if (!st)
        return;
    st->cancelled = true;
    if (st->proc && !af_process_exited(st->proc))
        af_process_kill(st->proc, af_job_kill_grace_ms(job));
    else if (st->assemble && !af_worker_finished(st->assemble))
        af_worker_cancel(st->assemble);
}

static void s_release(af_job_t *job)
{
    s_native_t *st = af_job_exec_data(job);
    if (!st)
        return;
    af_process_destroy(&st->proc);
    if (st->assemble && !af_worker_finished(st->assemble))
        af_worker_cancel(st->assemble);
    af_worker_destroy(&st->assemble);
    af_recipe_destroy(&st->recipe);
    af_buildenv_destroy(&st->envp);
    free(st);
    af_job_set_exec_data(job, NULL);
}

const af_executor_t af_executor_native = {
    .name = "native",
    .kinds = s_kinds,
    .probe = s_probe,
    .start = s_start,
    .cancel = s_cancel,
    .release = s_release,
};
