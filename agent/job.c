/* job.c -- one slice's state machine on the agent (see job.h).
 *
 * The job owns its BUILD message (and with it the registry password,
 * zeroed when the message is destroyed), the context writer while
 * receiving, the delta file and the worker that applies it (ctxdelta.h)
 * when the context comes as a delta, the extraction worker, and the
 * executor's state through the executor's release(). It talks to its
 * coordinator directly: STATUS, LOG, CREDIT and the final RESULT go out on
 * the agent's ROUTER with the coordinator's routing id. */
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "ctxdelta.h"
#include "log.h"
#include "recovery.h"
#include "tmpfile.h"
#include "worker.h"

/* Build output rate limit per job. The agent's ROUTER queues at most
 * S_SNDHWM messages per coordinator and drops the rest silently (RESULT
 * included), and nothing tells the agent how far behind the coordinator
 * is; so a job forwards at most S_LOG_RATE lines of build output a second
 * (bursts of S_LOG_BURST), which any coordinator keeps up with, and
 * summarises the rest: a count of dropped lines, then the last S_LOG_TAIL
 * of them, when forwarding resumes, before an agent line and before RESULT
 * (the end of a log holds the real error). Never silent. */
#define S_LOG_RATE 2000
#define S_LOG_BURST 20000
#define S_LOG_TAIL 100

typedef struct {
    char stream[8];
    char line[AF_MAX_LOG_LINE + 1];
} s_tail_line_t;

typedef struct {
    double tokens;       /* lines that may go out now */
    int64_t refill_ms;   /* zclock_mono() of the last refill */
    uint64_t dropped;    /* dropped since the last summary, tail included */
    uint64_t total;      /* dropped over the job's life */
    s_tail_line_t *tail; /* ring of the last S_LOG_TAIL dropped lines, lazily */
    size_t tail_next, tail_len;
} s_lograte_t;

struct af_job {
    af_job_hooks_t hooks;
    s_lograte_t lograte;
    const af_executor_t *executor;
    af_msg_t *build;
    zframe_t *peer;
    char id[AF_MAX_NAME + 1];
    uint32_t attempt;
    char tag[AF_MAX_NAME + 16]; /* "job/attempt" for logs */
    af_platform_t platform;
    af_job_state_t state;
    char dir[AF_CONTEXT_MAX_PATH];
    char ctx_dir[AF_CONTEXT_MAX_PATH];
    bool dir_made;
    bool have_context;
    bool pinned;
    bool base_pinned; /* context_base, while a delta against it is applied */
    bool use_delta;   /* the context comes as a delta against context_base */
    bool queued_notified;
    bool executor_started;
    bool closed;
    af_context_writer_t *writer;
    uint32_t unacked; /* chunks written since the last CREDIT */
    int delta_fd;     /* the delta received so far (unnamed file in the job dir), -1 */
    uint64_t delta_written;
    af_worker_t *apply; /* rebuilds the context from the base and the delta */
    af_worker_t *extract;
    af_worker_t *remove; /* deletes the job dir while closing */
    int timeout_timer;
    uint32_t timeout_s;
    bool cancelling;
    af_job_outcome_t cancel;
    af_job_outcome_t outcome;
    int64_t started_ms;
    void *exec_data;
    pid_t step_pid;
};

static void s_finish(af_job_t *self, const af_job_outcome_t *outcome);

/* --- sending --- */

static void s_send(af_job_t *self, af_msg_t **msg_p)
{
    af_msg_t *msg = *msg_p;
    if (!msg)
        return;
    if (!self->peer) { /* the coordinator is gone */
        af_msg_destroy(msg_p);
        return;
    }
    snprintf(msg->job, sizeof msg->job, "%s", self->id);
    msg->attempt = self->attempt;
    af_msg_set_routing_id(msg, self->peer);
    af_err_t err;
    af_err_clear(&err);
    if (af_msg_send(msg, self->hooks.router, &err) < 0)
        af_warn_job(self->tag, self->hooks.node, "cannot send %s: %s", af_cmd_name(msg->cmd),
                    af_err_msg(&err, AF_ERR_PROTO));
    af_msg_destroy(msg_p);
}

void af_job_status(af_job_t *self, const char *state, const char *detail)
{
    af_msg_t *msg = af_msg_new(AF_CMD_STATUS);
    if (!msg)
        return;
    snprintf(msg->state, sizeof msg->state, "%s", state);
    snprintf(msg->detail, sizeof msg->detail, "%s", detail ? detail : "");
    af_debug_job(self->tag, self->hooks.node, "status %s %s", state, detail ? detail : "");
    s_send(self, &msg);
}

static void s_log_send(af_job_t *self, const char *stream, const char *line)
{
    af_msg_t *msg = af_msg_new(AF_CMD_LOG);
    if (!msg)
        return;
    snprintf(msg->stream, sizeof msg->stream, "%s", stream);
    snprintf(msg->line, sizeof msg->line, "%s", line);
    s_send(self, &msg);
}

/* Sends "N lines dropped" for the dropped lines not in the tail (all of
 * them unless WITH_TAIL), then, WITH_TAIL, the tail itself. Bypasses the
 * rate limit (the caller charges it). */
static void s_log_flush(af_job_t *self, bool with_tail)
{
    s_lograte_t *r = &self->lograte;
    if (r->dropped == 0)
        return;
    uint64_t n = with_tail ? r->dropped - r->tail_len : r->dropped;
    if (n > 0) {
        char note[160];
        snprintf(note, sizeof note, "%llu lines of output dropped (more than %d lines/s)%s",
                 (unsigned long long)n, S_LOG_RATE,
                 with_tail && r->tail_len ? "; the last lines follow" : "");
        s_log_send(self, "agent", note);
    }
    if (with_tail) {
        size_t first = (r->tail_next + S_LOG_TAIL - r->tail_len) % S_LOG_TAIL;
        for (size_t i = 0; i < r->tail_len; i++) {
            const s_tail_line_t *t = &r->tail[(first + i) % S_LOG_TAIL];
            s_log_send(self, t->stream, t->line);
        }
    }
    r->dropped = 0;
    r->tail_len = 0;
    r->tail_next = 0;
}

void af_job_log(af_job_t *self, const char *stream, const char *line)
{
    s_lograte_t *r = &self->lograte;
    int64_t now = zclock_mono();
    if (r->refill_ms == 0) {
        r->tokens = S_LOG_BURST;
        r->refill_ms = now;
    } else if (now > r->refill_ms) {
        r->tokens += (double)(now - r->refill_ms) * S_LOG_RATE / 1000.0;
        if (r->tokens > S_LOG_BURST)
            r->tokens = S_LOG_BURST;
        r->refill_ms = now;
    }
    /* the agent's own lines are few and never dropped; while dropping,
     * build output resumes only once a second's worth of budget is back */
    bool own = strcmp(stream, "agent") == 0;
    if (own || (r->dropped == 0 && r->tokens >= 1.0) || r->tokens >= S_LOG_RATE) {
        if (r->dropped > 0) { /* what was dropped, then its last lines, then this one */
            r->tokens -= 1.0 + (double)r->tail_len;
            s_log_flush(self, true);
        }
        r->tokens -= 1.0;
        s_log_send(self, stream, line);
        return;
    }
    if (!r->tail)
        r->tail = calloc(S_LOG_TAIL, sizeof *r->tail);
    if (r->total == 0)
        af_warn_job(self->tag, self->hooks.node,
                    "build output faster than %d lines/s: dropping lines (counted, the last %d "
                    "kept)",
                    S_LOG_RATE, S_LOG_TAIL);
    r->dropped++;
    r->total++;
    if (r->tail) {
        s_tail_line_t *t = &r->tail[r->tail_next];
        snprintf(t->stream, sizeof t->stream, "%s", stream);
        snprintf(t->line, sizeof t->line, "%s", line);
        r->tail_next = (r->tail_next + 1) % S_LOG_TAIL;
        if (r->tail_len < S_LOG_TAIL)
            r->tail_len++;
    }
}

static void s_send_credit(af_job_t *self, uint32_t credit)
{
    af_msg_t *msg = af_msg_new(AF_CMD_CREDIT);
    if (!msg)
        return;
    msg->offset = self->use_delta ? self->delta_written
                  : self->writer  ? af_context_writer_offset(self->writer)
                                  : 0;
    msg->credit = credit;
    s_send(self, &msg);
}

/* --- helpers --- */

void af_job_outcome_fail(af_job_outcome_t *out, const char *failure, int32_t exit_code,
                         const char *fmt, ...)
{
    memset(out, 0, sizeof *out);
    out->ok = false;
    snprintf(out->failure, sizeof out->failure, "%s", failure);
    out->exit_code = exit_code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
}

static void s_fail(af_job_t *self, const char *failure, const char *msg)
{
    af_job_outcome_t out;
    af_job_outcome_fail(&out, failure, -1, "%s", msg);
    s_finish(self, &out);
}

static void s_unpin(af_job_t *self)
{
    if (self->pinned) {
        af_context_store_unpin(self->hooks.store, self->build->context_digest);
        self->pinned = false;
    }
}

static void s_unpin_base(af_job_t *self)
{
    if (self->base_pinned) {
        af_context_store_unpin(self->hooks.store, self->build->context_base);
        self->base_pinned = false;
    }
}

static int s_on_timeout(zloop_t *loop, int timer_id, void *arg)
{
    af_job_t *self = (af_job_t *)arg;
    self->timeout_timer = -1; /* one-shot: freed by the loop */
    af_warn_job(self->tag, self->hooks.node, "timed out after %u s", self->timeout_s);
    af_job_cancel(self, "timeout", "timed out after %u s", self->timeout_s);
    return 0;
}

static void s_end_timer(af_job_t *self)
{
    if (self->timeout_timer >= 0) {
        zloop_timer_end(self->hooks.loop, self->timeout_timer);
        self->timeout_timer = -1;
    }
}

/* Records the outcome (a pending cancel wins) and tells the agent. */
static void s_finish(af_job_t *self, const af_job_outcome_t *outcome)
{
    if (self->state == AF_JOB_DONE)
        return;
    self->state = AF_JOB_DONE;
    self->outcome = self->cancelling ? self->cancel : *outcome;
    s_end_timer(self);
    if (self->outcome.ok)
        af_info_job(self->tag, self->hooks.node, "built %s", self->outcome.digest);
    else
        af_info_job(self->tag, self->hooks.node, "failed (%s): %s", self->outcome.failure,
                    self->outcome.message);
    if (self->hooks.on_finished)
        self->hooks.on_finished(self->hooks.arg, self);
}

static int s_mkdir(const char *path, af_err_t *err)
{
    if (mkdir(path, 0700) < 0)
        return af_err_set(err, errno == EEXIST ? AF_ERR_STATE : AF_ERR_IO, "%s: %s", path,
                          strerror(errno));
    return 0;
}

/* --- lifecycle --- */

af_job_t *af_job_new(const af_job_hooks_t *hooks, af_msg_t **build_p, const af_executor_t *executor,
                     af_err_t *err)
{
    assert(hooks && build_p && *build_p && executor);
    af_msg_t *build = *build_p;
    *build_p = NULL;
    af_job_t *self = calloc(1, sizeof *self);
    if (!self) {
        af_msg_destroy(&build);
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    self->hooks = *hooks;
    self->executor = executor;
    self->build = build;
    self->timeout_timer = -1;
    self->delta_fd = -1;
    self->started_ms = zclock_mono();
    snprintf(self->id, sizeof self->id, "%s", build->job);
    self->attempt = build->attempt;
    snprintf(self->tag, sizeof self->tag, "%s/%u", self->id, self->attempt);
    self->outcome.exit_code = -1;
    if (build->routing_id && !(self->peer = zframe_dup(build->routing_id))) {
        af_err_set(err, AF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (af_platform_parse(build->platform, &self->platform, err) < 0)
        goto fail;
    self->timeout_s = build->timeout_s ? build->timeout_s : hooks->default_timeout_s;
    if (snprintf(self->dir, sizeof self->dir, "%s/%s-%u", hooks->jobs_dir, self->id,
                 self->attempt) >= (int)sizeof self->dir - 8) {
        af_err_set(err, AF_ERR_TOOBIG, "job dir path too long");
        goto fail;
    }
    snprintf(self->ctx_dir, sizeof self->ctx_dir, "%s/ctx", self->dir);
    if (s_mkdir(self->dir, err) < 0)
        goto fail;
    self->dir_made = true;
    if (build->context_size == 0) {
        self->have_context = true; /* nothing to send */
        self->state = AF_JOB_READY;
    } else if (af_context_store_has(hooks->store, build->context_digest)) {
        af_context_store_pin(hooks->store, build->context_digest);
        self->pinned = true;
        self->have_context = true;
        self->state = AF_JOB_READY;
    } else {
        self->state = AF_JOB_RECEIVING;
        if (build->context_base[0] && af_context_store_has(hooks->store, build->context_base)) {
            af_context_store_pin(hooks->store, build->context_base);
            self->base_pinned = true;
            self->use_delta = true;
        }
    }
    af_info_job(self->tag, hooks->node, "accepted %s %s recipe for %s (context %s, %s)",
                build->platform, build->recipe_kind, build->repository, build->context_digest,
                self->have_context ? "cached"
                : self->use_delta  ? "to receive as a delta"
                                   : "to receive");
    return self;
fail:
    af_job_destroy(&self);
    return NULL;
}

/* Releases the worker, the executor's state, the writer and the pin.
 * Idempotent. Blocks only if something is still running (hard stop). */
static void s_release(af_job_t *self)
{
    s_end_timer(self);
    if (self->extract && !af_worker_finished(self->extract))
        af_worker_cancel(self->extract);
    af_worker_destroy(&self->extract);
    if (self->apply && !af_worker_finished(self->apply))
        af_worker_cancel(self->apply);
    af_worker_destroy(&self->apply); /* it writes into the writer: first */
    if (self->executor_started && self->executor->release) {
        self->executor->release(self);
        self->executor_started = false;
    }
    af_context_writer_destroy(&self->writer);
    if (self->delta_fd >= 0) {
        close(self->delta_fd);
        self->delta_fd = -1;
    }
    s_unpin(self);
    s_unpin_base(self);
}

static void s_remove_dir(af_job_t *self)
{
    if (!self->dir_made)
        return;
    (void)af_recovery_kill_job(self->dir); /* leftovers that left the group */
    af_err_t err;
    af_err_clear(&err);
    if (af_remove_tree(self->dir, &err) < 0)
        af_error_job(self->tag, self->hooks.node, "cannot remove job dir: %s",
                     af_err_msg(&err, AF_ERR_IO));
    self->dir_made = false;
}

void af_job_destroy(af_job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_job_t *self = *self_p;
    s_release(self);
    af_worker_destroy(&self->remove); /* waits for a removal in progress */
    s_remove_dir(self);
    zframe_destroy(&self->peer);
    af_msg_destroy(&self->build);
    free(self->lograte.tail);
    free(self);
    *self_p = NULL;
}

static void s_send_result(af_job_t *self)
{
    af_msg_t *msg = af_msg_new(AF_CMD_RESULT);
    if (!msg)
        return;
    const af_job_outcome_t *o = &self->outcome;
    msg->ok = o->ok;
    snprintf(msg->digest, sizeof msg->digest, "%s", o->digest);
    snprintf(msg->media_type, sizeof msg->media_type, "%s", o->media_type);
    msg->size = o->size;
    snprintf(msg->platform, sizeof msg->platform, "%s", self->build->platform);
    snprintf(msg->failure, sizeof msg->failure, "%s", o->ok ? "" : o->failure);
    msg->exit_code = o->exit_code;
    snprintf(msg->message, sizeof msg->message, "%s", o->message);
    int64_t now = zclock_mono();
    msg->duration_ms = now > self->started_ms ? (uint64_t)(now - self->started_ms) : 0;
    msg->pushed_bytes = o->ok ? o->pushed_bytes : -1;
    s_log_flush(self, true); /* the end of the log goes out before RESULT */
    if (self->lograte.total > 0)
        af_warn_job(self->tag, self->hooks.node, "%llu lines of build output were dropped",
                    (unsigned long long)self->lograte.total);
    s_send(self, &msg);
}

/* Runs in the worker thread. */
/* Kills what the step left running (a `setsid` daemon escapes its process
 * group but keeps its cwd or environment in the job dir), then removes the
 * dir. Worker thread: af_recovery_kill_job may wait for the kills. */
static int s_remove_run(af_worker_ctx_t *ctx, void *varg, af_err_t *err)
{
    const char *dir = (const char *)varg;
    size_t n = af_recovery_kill_job(dir);
    if (n > 0)
        af_warn("%s: killed %zu process(es) the build step left running", dir, n);
    return af_remove_tree(dir, err);
}

static void s_on_removed(void *arg, int code, const char *message, const char *const *outputs,
                         size_t n_outputs)
{
    af_job_t *self = (af_job_t *)arg;
    if (code != 0)
        af_error_job(self->tag, self->hooks.node, "cannot remove job dir: %s", message);
    self->dir_made = false;
    s_send_result(self);
    if (self->hooks.on_closed)
        self->hooks.on_closed(self->hooks.arg, self);
}

void af_job_close(af_job_t *self)
{
    assert(self);
    if (self->closed)
        return;
    self->closed = true;
    s_release(self);
    char *path = self->dir_made ? strdup(self->dir) : NULL;
    if (path)
        self->remove =
            af_worker_new(self->hooks.loop, s_remove_run, path, free, NULL, s_on_removed, self);
    if (!self->remove) {
        s_remove_dir(self); /* no dir, or no thread: do it here */
        s_on_removed(self, 0, "", NULL, 0);
    }
}

/* The delta goes to an unnamed file in the job dir (tmpfile.h): gone with
 * the job whatever happens. */
static int s_delta_file(af_job_t *self, af_err_t *err)
{
    self->delta_fd = af_tmpfile(self->dir, "context-delta", err);
    return self->delta_fd < 0 ? err->code : 0;
}

void af_job_begin(af_job_t *self)
{
    assert(self);
    if (self->state == AF_JOB_RECEIVING) {
        af_err_t err;
        af_err_clear(&err);
        self->writer = af_context_writer_new(self->hooks.store, self->build->context_digest,
                                             self->build->context_size, &err);
        if (!self->writer || (self->use_delta && s_delta_file(self, &err) < 0)) {
            s_fail(self, "infra", af_err_msg(&err, AF_ERR_IO));
            return;
        }
        char detail[128];
        if (self->use_delta)
            snprintf(detail, sizeof detail, "%llu bytes as a %llu-byte delta",
                     (unsigned long long)self->build->context_size,
                     (unsigned long long)self->build->context_delta_size);
        else
            snprintf(detail, sizeof detail, "%llu bytes",
                     (unsigned long long)self->build->context_size);
        af_job_status(self, "receiving", detail);
        s_send_credit(self, AF_CREDIT_WINDOW);
        return;
    }
    if (self->state == AF_JOB_READY && self->hooks.on_ready)
        self->hooks.on_ready(self->hooks.arg, self);
}

/* The whole context is in the writer: check its digest, store it, READY. */
static void s_context_complete(af_job_t *self)
{
    af_err_t err;
    af_err_clear(&err);
    int rc = af_context_writer_commit(self->writer, &err);
    af_context_writer_destroy(&self->writer);
    s_unpin_base(self);
    if (rc < 0) {
        s_fail(self, "infra", af_err_msg(&err, rc));
        return;
    }
    self->pinned = true; /* commit pinned it for us */
    self->state = AF_JOB_READY;
    af_info_job(self->tag, self->hooks.node, "context %s received%s", self->build->context_digest,
                self->use_delta ? " (rebuilt from a delta)" : "");
    if (self->hooks.on_ready)
        self->hooks.on_ready(self->hooks.arg, self);
}

/* --- a context sent as a delta (ctxdelta.h) --- */

typedef struct {
    char *base;   /* the base tar's path in the store (pinned) */
    int delta_fd; /* borrowed: the job closes it after the worker ends */
    uint64_t delta_size, context_size;
    af_context_writer_t *writer; /* borrowed: the loop leaves it alone until DONE */
    af_worker_ctx_t *ctx;
} s_apply_args_t;

static void s_apply_args_free(void *varg)
{
    s_apply_args_t *a = (s_apply_args_t *)varg;
    if (a) {
        free(a->base);
        free(a);
    }
}

/* Worker thread: the rebuilt tar goes into the writer in chunk-sized
 * pieces (its checks and digest are the ones a sent context gets). */
static int s_apply_sink(void *arg, const void *data, size_t len, af_err_t *err)
{
    s_apply_args_t *a = (s_apply_args_t *)arg;
    if (af_worker_cancelled(a->ctx))
        return af_err_set(err, AF_ERR_CANCELLED, "cancelled");
    const char *p = data;
    while (len > 0) {
        size_t n = len < AF_CHUNK_SIZE ? len : AF_CHUNK_SIZE;
        int rc = af_context_writer_write(a->writer, af_context_writer_offset(a->writer), p, n, err);
        if (rc < 0)
            return rc;
        p += n;
        len -= n;
    }
    return 0;
}

/* Worker thread: applies the delta file to the base tar. */
static int s_apply_run(af_worker_ctx_t *ctx, void *varg, af_err_t *err)
{
    s_apply_args_t *a = (s_apply_args_t *)varg;
    a->ctx = ctx;
    int base = open(a->base, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (base < 0 || fstat(base, &st) < 0) {
        int rc = af_err_set(err, AF_ERR_IO, "%s: %s", a->base, strerror(errno));
        if (base >= 0)
            close(base);
        return rc;
    }
    af_ctxdelta_apply_t *ap = af_ctxdelta_apply_new(base, (uint64_t)st.st_size, s_apply_sink, a);
    char *buf = malloc(AF_CHUNK_SIZE);
    int rc = ap && buf ? 0 : af_err_set(err, AF_ERR_NOMEM, "out of memory");
    for (uint64_t off = 0; !rc && off < a->delta_size;) {
        uint64_t left = a->delta_size - off;
        size_t want = left < AF_CHUNK_SIZE ? (size_t)left : AF_CHUNK_SIZE;
        ssize_t n = pread(a->delta_fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = af_err_set(err, AF_ERR_IO, "reading the delta: %s",
                            n < 0 ? strerror(errno) : "short file");
        else if (af_worker_cancelled(ctx))
            rc = af_err_set(err, AF_ERR_CANCELLED, "cancelled");
        else {
            rc = af_ctxdelta_apply_feed(ap, buf, (size_t)n, err);
            off += (uint64_t)n;
        }
    }
    if (!rc)
        rc = af_ctxdelta_apply_finish(ap, err);
    if (!rc && !af_context_writer_complete(a->writer))
        rc = af_err_set(err, AF_ERR_PROTO, "the delta rebuilt %llu bytes of a %llu-byte context",
                        (unsigned long long)af_context_writer_offset(a->writer),
                        (unsigned long long)a->context_size);
    af_ctxdelta_apply_destroy(&ap);
    free(buf);
    close(base);
    return rc;
}

static void s_on_applied(void *arg, int code, const char *message, const char *const *outputs,
                         size_t n_outputs)
{
    af_job_t *self = (af_job_t *)arg;
    if (self->state != AF_JOB_RECEIVING)
        return; /* finished (cancelled) meanwhile */
    if (code != 0) {
        af_job_outcome_t out;
        af_job_outcome_fail(&out, "infra", -1, "cannot rebuild the context from its delta: %s",
                            message);
        s_finish(self, &out);
        return;
    }
    s_context_complete(self);
}

/* The whole delta is here: rebuild the context from it in a worker. */
static void s_apply_start(af_job_t *self)
{
    char base[AF_CONTEXT_MAX_PATH];
    if (af_context_store_path(self->hooks.store, self->build->context_base, base, sizeof base)) {
        s_fail(self, "infra", "the delta's base vanished from the context store");
        return;
    }
    af_job_status(self, "receiving", "rebuilding the context from the delta");
    s_apply_args_t *a = calloc(1, sizeof *a);
    if (a && !(a->base = strdup(base))) {
        free(a);
        a = NULL;
    }
    if (!a) {
        s_fail(self, "infra", "out of memory");
        return;
    }
    a->delta_fd = self->delta_fd;
    a->delta_size = self->build->context_delta_size;
    a->context_size = self->build->context_size;
    a->writer = self->writer;
    self->apply = af_worker_new(self->hooks.loop, s_apply_run, a, s_apply_args_free, NULL,
                                s_on_applied, self);
    if (!self->apply)
        s_fail(self, "infra", "cannot start the thread that applies the context delta");
}

/* A CHUNK of the delta: appended to the delta file, in order. */
static int s_delta_chunk(af_job_t *self, uint64_t offset, const void *data, size_t len,
                         af_err_t *err)
{
    uint64_t size = self->build->context_delta_size;
    if (offset != self->delta_written)
        return af_err_set(err, AF_ERR_PROTO,
                          "context delta chunk at offset %llu, expected offset %llu (%s)",
                          (unsigned long long)offset, (unsigned long long)self->delta_written,
                          offset < self->delta_written ? "overlap" : "gap");
    if (len > size - self->delta_written)
        return af_err_set(err, AF_ERR_PROTO,
                          "context delta chunk at offset %llu overruns the announced size %llu",
                          (unsigned long long)offset, (unsigned long long)size);
    for (size_t done = 0; done < len;) {
        ssize_t n =
            pwrite(self->delta_fd, (const char *)data + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return af_err_set(err, AF_ERR_IO, "writing the context delta: %s",
                              n < 0 ? strerror(errno) : "short write");
        done += (size_t)n;
    }
    self->delta_written += len;
    return 0;
}

void af_job_chunk(af_job_t *self, af_msg_t *chunk)
{
    assert(self && chunk);
    if (self->state == AF_JOB_DONE)
        return; /* late chunk after a failure or cancel */
    if (self->state != AF_JOB_RECEIVING || !self->writer || self->apply) {
        s_fail(self, "infra", "context chunk received after the context was complete");
        return;
    }
    af_err_t err;
    af_err_clear(&err);
    const void *data = chunk->data ? (const void *)zframe_data(chunk->data) : (const void *)"";
    size_t len = chunk->data ? zframe_size(chunk->data) : 0;
    int rc = self->use_delta
                 ? s_delta_chunk(self, chunk->offset, data, len, &err)
                 : af_context_writer_write(self->writer, chunk->offset, data, len, &err);
    if (rc < 0) {
        s_fail(self, "infra", af_err_msg(&err, AF_ERR_PROTO));
        return;
    }
    bool complete = self->use_delta ? self->delta_written == self->build->context_delta_size
                                    : af_context_writer_complete(self->writer);
    if (!complete) {
        if (++self->unacked >= AF_CREDIT_WINDOW / 2) {
            s_send_credit(self, self->unacked);
            self->unacked = 0;
        }
        return;
    }
    if (self->use_delta)
        s_apply_start(self);
    else
        s_context_complete(self);
}

/* --- extraction, then the executor --- */

typedef struct {
    char *tar;
    char *dest;
} s_extract_args_t;

static void s_extract_args_free(void *varg)
{
    s_extract_args_t *a = (s_extract_args_t *)varg;
    if (a) {
        free(a->tar);
        free(a->dest);
        free(a);
    }
}

/* Runs in the worker thread. af_archive_extract has no progress hook, so a
 * cancel is noticed before and after it. */
static int s_extract_run(af_worker_ctx_t *ctx, void *varg, af_err_t *err)
{
    s_extract_args_t *a = (s_extract_args_t *)varg;
    if (af_worker_cancelled(ctx))
        return af_err_set(err, AF_ERR_CANCELLED, "cancelled");
    int rc = af_archive_extract(a->tar, a->dest, NULL, err);
    if (rc == 0 && af_worker_cancelled(ctx))
        return af_err_set(err, AF_ERR_CANCELLED, "cancelled");
    return rc;
}

static void s_run_executor(af_job_t *self)
{
    self->state = AF_JOB_RUNNING;
    if (self->cancelling) {
        s_finish(self, &self->cancel);
        return;
    }
    af_job_status(self, "running", self->executor->name);
    self->executor_started = true;
    af_err_t err;
    af_err_clear(&err);
    if (self->executor->start(self, &err) < 0) {
        af_job_outcome_t out;
        af_job_outcome_fail(&out, "infra", -1, "%s", af_err_msg(&err, AF_ERR_STATE));
        s_finish(self, &out);
    }
}

static void s_on_extract_done(void *arg, int code, const char *message, const char *const *outputs,
                              size_t n_outputs)
{
    af_job_t *self = (af_job_t *)arg;
    s_unpin(self);
    if (self->cancelling) {
        s_finish(self, &self->cancel);
        return;
    }
    if (code != 0) {
        af_job_outcome_t out;
        af_job_outcome_fail(&out, "infra", -1, "cannot extract the context: %s", message);
        s_finish(self, &out);
        return;
    }
    s_run_executor(self);
}

void af_job_start(af_job_t *self)
{
    assert(self);
    if (self->state != AF_JOB_READY)
        return;
    self->state = AF_JOB_EXTRACTING;
    if (self->timeout_s)
        self->timeout_timer =
            zloop_timer(self->hooks.loop, (size_t)self->timeout_s * 1000, 1, s_on_timeout, self);
    af_err_t err;
    af_err_clear(&err);
    if (s_mkdir(self->ctx_dir, &err) < 0) {
        s_fail(self, "infra", af_err_msg(&err, AF_ERR_IO));
        return;
    }
    if (self->build->context_size == 0) {
        s_run_executor(self);
        return;
    }
    char tar[AF_CONTEXT_MAX_PATH];
    if (af_context_store_path(self->hooks.store, self->build->context_digest, tar, sizeof tar)) {
        s_fail(self, "infra", "the context vanished from the context store");
        return;
    }
    af_job_status(self, "extracting", self->build->context_digest);
    s_extract_args_t *a = calloc(1, sizeof *a);
    if (a) {
        a->tar = strdup(tar);
        a->dest = strdup(self->ctx_dir);
    }
    if (!a || !a->tar || !a->dest) {
        s_extract_args_free(a);
        s_fail(self, "infra", "out of memory");
        return;
    }
    self->extract = af_worker_new(self->hooks.loop, s_extract_run, a, s_extract_args_free, NULL,
                                  s_on_extract_done, self);
    if (!self->extract)
        s_fail(self, "infra", "cannot start the extraction thread");
}

void af_job_cancel(af_job_t *self, const char *failure, const char *fmt, ...)
{
    assert(self && failure);
    if (self->state == AF_JOB_DONE || self->cancelling)
        return;
    va_list ap;
    va_start(ap, fmt);
    char text[AF_MAX_STR + 1];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    af_job_outcome_fail(&self->cancel, failure, -1, "%s", text);
    self->cancelling = true;
    af_info_job(self->tag, self->hooks.node, "stopping (%s): %s", failure, text);
    switch (self->state) {
    case AF_JOB_RECEIVING:
    case AF_JOB_READY:
        s_finish(self, &self->cancel);
        break;
    case AF_JOB_EXTRACTING:
        if (self->extract)
            af_worker_cancel(self->extract);
        else
            s_finish(self, &self->cancel);
        break;
    case AF_JOB_RUNNING:
        if (self->executor->cancel)
            self->executor->cancel(self);
        break;
    case AF_JOB_DONE:
        break;
    }
}

void af_job_executor_done(af_job_t *self, const af_job_outcome_t *outcome)
{
    assert(self && outcome);
    if (self->state != AF_JOB_RUNNING)
        return;
    s_finish(self, outcome);
}

void af_job_forget_peer(af_job_t *self)
{
    assert(self);
    zframe_destroy(&self->peer);
}

void af_job_notify_queued(af_job_t *self)
{
    assert(self);
    if (self->queued_notified || self->state == AF_JOB_DONE)
        return;
    self->queued_notified = true;
    af_job_status(self, "queued", "waiting for a free slot");
}

/* --- accessors --- */

const char *af_job_id(const af_job_t *self)
{
    return self->id;
}
uint32_t af_job_attempt(const af_job_t *self)
{
    return self->attempt;
}
af_job_state_t af_job_state(const af_job_t *self)
{
    return self->state;
}
bool af_job_have_context(const af_job_t *self)
{
    return self->have_context;
}
bool af_job_have_base(const af_job_t *self)
{
    return self->use_delta;
}
zframe_t *af_job_peer(const af_job_t *self)
{
    return self->peer;
}
zloop_t *af_job_loop(const af_job_t *self)
{
    return self->hooks.loop;
}
const af_msg_t *af_job_build(const af_job_t *self)
{
    return self->build;
}
const af_confine_t *af_job_confine(const af_job_t *self)
{
    return self->hooks.confine;
}

const char *af_job_dir(const af_job_t *self)
{
    return self->dir;
}
const char *af_job_ctx_dir(const af_job_t *self)
{
    return self->ctx_dir;
}
const af_platform_t *af_job_platform(const af_job_t *self)
{
    return &self->platform;
}
const char *af_job_node(const af_job_t *self)
{
    return self->hooks.node;
}
int af_job_kill_grace_ms(const af_job_t *self)
{
    return self->hooks.kill_grace_ms;
}
void af_job_set_exec_data(af_job_t *self, void *data)
{
    self->exec_data = data;
}
void *af_job_exec_data(const af_job_t *self)
{
    return self->exec_data;
}

const af_platform_t *af_job_build_platform(const af_job_t *self)
{
    return &self->hooks.build_platform;
}

const char *af_job_state_name(af_job_state_t state)
{
    switch (state) {
    case AF_JOB_RECEIVING:
        return "receiving";
    case AF_JOB_READY:
        return "queued";
    case AF_JOB_EXTRACTING:
        return "extracting";
    case AF_JOB_RUNNING:
        return "running";
    case AF_JOB_DONE:
        return "done";
    }
    return "unknown";
}

bool af_job_matches(const af_job_t *self, const char *job, uint32_t attempt)
{
    return !strcmp(self->id, job) && (attempt == 0 || attempt == self->attempt);
}

pid_t af_job_step_pid(const af_job_t *self)
{
    return self->step_pid;
}

void af_job_write_pgid(af_job_t *self, pid_t pgid)
{
    self->step_pid = pgid;
    char path[AF_CONTEXT_MAX_PATH + 8];
    snprintf(path, sizeof path, "%s/pgid", self->dir);
    FILE *f = fopen(path, "we");
    if (!f) {
        af_warn_job(self->tag, self->hooks.node, "%s: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%d\n", (int)pgid);
    if (fclose(f) != 0)
        af_warn_job(self->tag, self->hooks.node, "%s: %s", path, strerror(errno));
}
