/* worker.h -- one blocking task run in a zactor thread for the agent loop.
 *
 * Extracting a context and assembling/pushing an image block for seconds
 * or minutes; the agent's loop must not. A worker runs FN(ctx, ARGS) in
 * its own thread. The thread talks to the loop only through the actor
 * pipe: log lines while it works, then one DONE with a code, a message and
 * up to AF_WORKER_MAX_OUTPUTS strings. The loop side receives them as
 * callbacks. Cancelling is cooperative: FN polls af_worker_cancelled()
 * between steps. */
#ifndef AF_AGENT_WORKER_H
#define AF_AGENT_WORKER_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "registry.h"

#define AF_WORKER_MAX_OUTPUTS 4

typedef struct af_worker af_worker_t;

/* Thread side of a worker. Borrowed by FN for its run. */
typedef struct af_worker_ctx af_worker_ctx_t;

/* Runs in the worker thread. Returns 0 or an AF_ERR_* code with err set.
 * Must not touch anything the loop owns. */
typedef int(af_worker_fn)(af_worker_ctx_t *ctx, void *args, af_err_t *err);

/* Frees ARGS in the worker thread after FN returns (zero secrets here). */
typedef void(af_worker_free_fn)(void *args);

/* Loop side: a progress line from FN. Borrowed for the call. */
typedef void(af_worker_log_fn)(void *cb_arg, const char *line);

/* Loop side: FN returned CODE (0 = success). MESSAGE is "" on success;
 * OUTPUTS are what FN set with af_worker_output(). All borrowed for the
 * call. The callback may destroy the worker (it is the last thing the
 * worker does in that loop turn). */
typedef void(af_worker_done_fn)(void *cb_arg, int code, const char *message,
                                const char *const *outputs, size_t n_outputs);

/* Starts FN in a new thread and watches its pipe on LOOP. Takes ARGS
 * (freed with FREE_FN, which may be NULL, in the thread, even on failure
 * here). Caller owns the result; NULL on failure. */
af_worker_t *af_worker_new(zloop_t *loop, af_worker_fn *fn, void *args, af_worker_free_fn *free_fn,
                           af_worker_log_fn *on_log, af_worker_done_fn *on_done, void *cb_arg);

/* Stops watching, ends the thread and waits for it. Blocks until FN
 * returns if it is still running (FN sees af_worker_cancelled() true).
 * NULL-safe; nulls *self_p. */
void af_worker_destroy(af_worker_t **self_p);

/* Asks FN to stop at its next af_worker_cancelled() check. */
void af_worker_cancel(af_worker_t *self);

/* True once DONE was received. */
bool af_worker_finished(const af_worker_t *self);

/* --- thread side, for FN only --- */

/* Sends a progress line to the loop (truncated to AF_MAX_LOG_LINE). */
void af_worker_log(af_worker_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True once the loop asked to stop. Never blocks. */
bool af_worker_cancelled(af_worker_ctx_t *ctx);

/* Makes every request of REG (borrowed; NULL-safe) end with
 * AF_ERR_CANCELLED soon after the loop asks this worker to stop (a job's
 * timeout, cancel or the agent's shutdown), even mid-transfer to a
 * registry that stopped answering: a worker blocked in a push must not
 * hold its slot, job dir and thread until curl's low-speed limit. Until
 * REG is destroyed or its hook replaced, REG is used only in this thread. */
void af_worker_bind_registry(af_worker_ctx_t *ctx, af_registry_t *reg);

/* Adds one output string for the DONE report. 0 or AF_ERR_TOOBIG/NOMEM. */
int af_worker_output(af_worker_ctx_t *ctx, const char *value);

#endif
