/* worker.c -- a blocking task in a zactor, reporting to the loop by pipe.
 *
 * Pipe protocol (inside the process only):
 *   thread -> loop  "LOG" line
 *   thread -> loop  "DONE" code message output...
 *   loop -> thread  "CANCEL"         (cooperative, seen by af_worker_cancelled)
 *   loop -> thread  "$TERM"          (zactor_destroy; the thread exits)
 * After DONE the thread waits for $TERM, so destroying a finished worker
 * never blocks. The task record (fn, args) belongs to the thread: the loop
 * never touches it after af_worker_new(). */
#include "worker.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "log.h"

struct af_worker {
    zloop_t *loop;
    zactor_t *actor;
    bool watching;
    bool finished;
    af_worker_log_fn *on_log;
    af_worker_done_fn *on_done;
    void *cb_arg;
};

typedef struct {
    af_worker_fn *fn;
    void *args;
    af_worker_free_fn *free_fn;
} s_task_t;

struct af_worker_ctx {
    zsock_t *pipe;
    bool cancelled;
    bool term; /* $TERM seen: do not wait for another */
    char *outputs[AF_WORKER_MAX_OUTPUTS];
    size_t n_outputs;
};

static void s_actor(zsock_t *pipe, void *varg)
{
    s_task_t *task = (s_task_t *)varg;
    af_worker_ctx_t ctx = {.pipe = pipe};
    zsock_signal(pipe, 0);

    af_err_t err;
    af_err_clear(&err);
    int code = task->fn(&ctx, task->args, &err);
    if (task->free_fn)
        task->free_fn(task->args);
    free(task);

    zmsg_t *msg = zmsg_new();
    if (msg) {
        zmsg_addstr(msg, "DONE");
        zmsg_addstrf(msg, "%d", code);
        zmsg_addstr(msg, code ? af_err_msg(&err, code) : "");
        for (size_t i = 0; i < ctx.n_outputs; i++)
            zmsg_addstr(msg, ctx.outputs[i]);
        if (zmsg_send(&msg, pipe) < 0)
            zmsg_destroy(&msg);
    }
    for (size_t i = 0; i < ctx.n_outputs; i++)
        free(ctx.outputs[i]);
    while (!ctx.term) {
        char *cmd = zstr_recv(pipe);
        if (!cmd)
            break; /* interrupted or pipe gone */
        ctx.term = streq(cmd, "$TERM");
        zstr_free(&cmd);
    }
}

static int s_on_pipe(zloop_t *loop, zsock_t *sock, void *arg)
{
    af_worker_t *self = (af_worker_t *)arg;
    zmsg_t *msg = zmsg_recv(sock);
    if (!msg)
        return 0;
    char *cmd = zmsg_popstr(msg);
    if (cmd && streq(cmd, "LOG")) {
        char *line = zmsg_popstr(msg);
        if (line && self->on_log)
            self->on_log(self->cb_arg, line);
        zstr_free(&line);
    } else if (cmd && streq(cmd, "DONE") && !self->finished) {
        char *code_s = zmsg_popstr(msg);
        char *message = zmsg_popstr(msg);
        char *outputs[AF_WORKER_MAX_OUTPUTS];
        size_t n = 0;
        while (n < AF_WORKER_MAX_OUTPUTS && (outputs[n] = zmsg_popstr(msg)) != NULL)
            n++;
        int code = code_s ? atoi(code_s) : AF_ERR_STATE;
        self->finished = true;
        zloop_reader_end(self->loop, zactor_sock(self->actor));
        self->watching = false;
        af_worker_done_fn *on_done = self->on_done;
        void *cb_arg = self->cb_arg;
        zstr_free(&code_s);
        zstr_free(&cmd);
        zmsg_destroy(&msg);
        if (on_done)
            on_done(cb_arg, code, message ? message : "", (const char *const *)outputs, n);
        zstr_free(&message);
        for (size_t i = 0; i < n; i++)
            zstr_free(&outputs[i]);
        return 0; /* self may be gone */
    }
    zstr_free(&cmd);
    zmsg_destroy(&msg);
    return 0;
}

af_worker_t *af_worker_new(zloop_t *loop, af_worker_fn *fn, void *args, af_worker_free_fn *free_fn,
                           af_worker_log_fn *on_log, af_worker_done_fn *on_done, void *cb_arg)
{
    assert(loop && fn);
    af_worker_t *self = calloc(1, sizeof *self);
    s_task_t *task = calloc(1, sizeof *task);
    if (!self || !task)
        goto fail;
    task->fn = fn;
    task->args = args;
    task->free_fn = free_fn;
    self->loop = loop;
    self->on_log = on_log;
    self->on_done = on_done;
    self->cb_arg = cb_arg;
    self->actor = zactor_new(s_actor, task);
    if (!self->actor)
        goto fail;
    task = NULL; /* the thread owns it now */
    if (zloop_reader(loop, zactor_sock(self->actor), s_on_pipe, self) < 0) {
        af_worker_destroy(&self);
        return NULL;
    }
    self->watching = true;
    return self;
fail:
    if (free_fn)
        free_fn(args);
    free(task);
    free(self);
    return NULL;
}

void af_worker_destroy(af_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    af_worker_t *self = *self_p;
    if (self->watching)
        zloop_reader_end(self->loop, zactor_sock(self->actor));
    zactor_destroy(&self->actor);
    free(self);
    *self_p = NULL;
}

void af_worker_cancel(af_worker_t *self)
{
    assert(self);
    if (!self->finished)
        zstr_send(self->actor, "CANCEL");
}

bool af_worker_finished(const af_worker_t *self)
{
    assert(self);
    return self->finished;
}

void af_worker_log(af_worker_ctx_t *ctx, const char *fmt, ...)
{
    char line[AF_MAX_LOG_LINE + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    zstr_sendm(ctx->pipe, "LOG");
    zstr_send(ctx->pipe, line);
}

static bool s_registry_cancelled(void *arg)
{
    return af_worker_cancelled((af_worker_ctx_t *)arg);
}

void af_worker_bind_registry(af_worker_ctx_t *ctx, af_registry_t *reg)
{
    if (reg)
        af_registry_set_cancel(reg, s_registry_cancelled, ctx);
}

bool af_worker_cancelled(af_worker_ctx_t *ctx)
{
    while (!ctx->term && (zsock_events(ctx->pipe) & ZMQ_POLLIN)) {
        char *cmd = zstr_recv(ctx->pipe);
        if (!cmd)
            break;
        if (streq(cmd, "$TERM"))
            ctx->term = ctx->cancelled = true;
        else if (streq(cmd, "CANCEL"))
            ctx->cancelled = true;
        zstr_free(&cmd);
    }
    return ctx->cancelled;
}

int af_worker_output(af_worker_ctx_t *ctx, const char *value)
{
    if (ctx->n_outputs >= AF_WORKER_MAX_OUTPUTS)
        return AF_ERR_TOOBIG;
    char *copy = strdup(value);
    if (!copy)
        return AF_ERR_NOMEM;
    ctx->outputs[ctx->n_outputs++] = copy;
    return 0;
}
