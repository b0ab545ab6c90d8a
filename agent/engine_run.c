/* engine_run.c -- the per-job step runner shared by the Dockerfile
 * executors: spawns each engine step from an argv list (af_process_new_argv,
 * posix_spawnp, no shell) in its own process group, turns its output into
 * LOG lines, runs workers, cancels and fails jobs; plus the $PATH lookup
 * the executors' available() checks use. See engine.h. */
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

bool af_engine_which(const char *name, char *out, size_t len)
{
    const char *path = getenv("PATH");
    if (!path || !path[0])
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, ":");
        if (n > 0) {
            char cand[AF_CONTEXT_MAX_PATH];
            int w = snprintf(cand, sizeof cand, "%.*s/%s", (int)n, p, name);
            struct stat st;
            if (w > 0 && (size_t)w < sizeof cand && stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
                access(cand, X_OK) == 0) {
                if (out)
                    snprintf(out, len, "%s", cand);
                return true;
            }
        }
        p += n;
        if (*p == ':')
            p++;
    }
    return false;
}

/* --- the per-job runner ------------------------------------------------- */

struct af_engine_run {
    af_job_t *job;
    af_process_t *proc;
    af_worker_t *worker;
    af_engine_step_fn *on_exit;
    bool cancelled;
    void *data;
    char tag[AF_MAX_NAME + 16];
};

void af_engine_run_destroy(af_engine_run_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_engine_run_t *self = *self_p;
    af_process_destroy(&self->proc);
    if (self->worker && !af_worker_finished(self->worker))
        af_worker_cancel(self->worker);
    af_worker_destroy(&self->worker);
    free(self);
    *self_p = NULL;
}

af_engine_run_t *af_engine_run_attach(af_job_t *job, size_t data_size, af_err_t *err)
{
    af_engine_run_t *run = calloc(1, sizeof *run);
    void *data = calloc(1, data_size);
    if (!run || !data) {
        free(run);
        free(data);
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    run->job = job;
    snprintf(run->tag, sizeof run->tag, "%s/%u", af_job_id(job), af_job_attempt(job));
    run->data = data;
    af_job_set_exec_data(job, run);
    return run;
}

void *af_engine_run_data(af_engine_run_t *self)
{
    return self->data;
}

bool af_engine_run_cancelled(const af_engine_run_t *self)
{
    return self->cancelled;
}

static void s_on_line(const char *stream, const char *line, size_t len, void *arg)
{
    af_job_log(((af_engine_run_t *)arg)->job, stream, line);
}

static void s_on_exit(int status, void *arg)
{
    af_engine_run_t *self = (af_engine_run_t *)arg;
    char text[96];
    af_debug_job(self->tag, af_job_node(self->job), "engine step %s",
                 af_process_status_text(status, text, sizeof text));
    /* last statement: the step callback may spawn the next step, which
     * destroys this process object (process.h allows it) */
    self->on_exit(self, self->job, status, self->cancelled);
}

/* Appends " ARG" (or "$ ARG" when FIRST) to BUF, single-quoted the way a
 * shell user would copy it when it holds anything but plain characters.
 * For the log line only: nothing ever parses it. Returns bytes written
 * (bounded by LEN - 1). */
static size_t s_quote_for_display(char *buf, size_t len, const char *arg, bool first)
{
    size_t o = 0;
    const char *lead = first ? "$ " : " ";
    bool plain = arg[0] && strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789_/.:=,@%+-") == strlen(arg);
    for (const char *p = lead; *p && o + 1 < len; p++)
        buf[o++] = *p;
    if (!plain && o + 1 < len)
        buf[o++] = '\'';
    for (const char *p = arg; *p && o + 1 < len; p++) {
        if (*p == '\'' && !plain) {
            for (const char *q = "'\\''"; *q && o + 1 < len; q++)
                buf[o++] = *q;
        } else
            buf[o++] = *p;
    }
    if (!plain && o + 1 < len)
        buf[o++] = '\'';
    buf[o] = '\0';
    return o;
}

int af_engine_run_spawn(af_engine_run_t *self, char *const argv[], char *const envp[],
                        const char *cwd, af_engine_step_fn *on_exit, af_err_t *err)
{
    if (!argv || !argv[0])
        return af_err_set(err, AF_ERR_INVAL, "empty command");
    /* the command line, for the user: arguments only, secrets never go in argv */
    char line[AF_MAX_LOG_LINE + 1];
    size_t lo = 0;
    for (size_t i = 0; argv[i] && lo < sizeof line - 1; i++)
        lo += s_quote_for_display(line + lo, sizeof line - lo, argv[i], i == 0);
    af_job_log(self->job, "agent", line);

    af_process_destroy(&self->proc);
    self->on_exit = on_exit;
    self->proc = af_process_new_argv(af_job_loop(self->job), argv, envp, cwd, s_on_line, s_on_exit,
                                     self, err);
    if (!self->proc) {
        int rc = err && err->code ? err->code : AF_ERR_CHILD;
        af_err_prefix(err, rc, "%s", argv[0]);
        return rc;
    }
    af_job_write_pgid(self->job, af_process_pid(self->proc));
    return 0;
}

static void s_on_worker_log(void *arg, const char *line)
{
    af_job_log(((af_engine_run_t *)arg)->job, "agent", line);
}

static void s_on_worker_done(void *arg, int code, const char *message, const char *const *outputs,
                             size_t n_outputs)
{
    af_engine_run_t *self = (af_engine_run_t *)arg;
    af_job_outcome_t out;
    af_push_target_outcome(&out, code, message, outputs, n_outputs, self->cancelled, -1);
    af_job_executor_done(self->job, &out);
}

int af_engine_run_worker(af_engine_run_t *self, af_worker_fn *fn, void *args,
                         af_worker_free_fn *free_fn, af_err_t *err)
{
    af_worker_destroy(&self->worker);
    self->worker = af_worker_new(af_job_loop(self->job), fn, args, free_fn, s_on_worker_log,
                                 s_on_worker_done, self);
    if (!self->worker)
        return af_err_set(err, AF_ERR_NOMEM, "cannot start a worker thread");
    return 0;
}

void af_engine_run_cancel(af_engine_run_t *self)
{
    if (!self)
        return;
    self->cancelled = true;
    if (self->proc && !af_process_exited(self->proc))
        af_process_kill(self->proc, af_job_kill_grace_ms(self->job));
    else if (self->worker && !af_worker_finished(self->worker))
        af_worker_cancel(self->worker);
}

void af_engine_run_fail(af_engine_run_t *self, af_job_t *job, const char *failure, const char *fmt,
                        ...)
{
    (void)self;
    af_job_outcome_t out;
    memset(&out, 0, sizeof out);
    char msg[AF_MAX_STR + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    af_job_outcome_fail(&out, failure, -1, "%s", msg);
    af_job_executor_done(job, &out);
}

void af_engine_run_fail_status(af_engine_run_t *self, af_job_t *job, const char *what, int status,
                               bool is_build)
{
    af_job_outcome_t out;
    memset(&out, 0, sizeof out);
    const char *failure = is_build ? "build" : "infra";
    if (self->cancelled)
        af_job_outcome_fail(&out, "cancelled", -1, "cancelled");
    else if (WIFEXITED(status))
        af_job_outcome_fail(&out, failure, WEXITSTATUS(status), "%s exited with status %d", what,
                            WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        af_job_outcome_fail(&out, failure, 128 + WTERMSIG(status), "%s killed by signal %d (%s)",
                            what, WTERMSIG(status), strsignal(WTERMSIG(status)));
    else {
        char text[96];
        af_job_outcome_fail(&out, failure, -1, "%s %s", what,
                            af_process_status_text(status, text, sizeof text));
    }
    af_job_executor_done(job, &out);
}
