/* job.h -- one slice on this agent, from BUILD to RESULT.
 *
 * States: RECEIVING (context chunks arriving; for a delta, then rebuilding
 * the context from the base the store holds, in a worker thread) -> READY (context stored,
 * waiting for a slot) -> EXTRACTING (worker thread) -> RUNNING (the
 * executor: build step, then pushing) -> DONE. A job that already has
 * its context starts in READY. Each stage is announced with STATUS. The
 * job dir, workdir/jobs/<job>-<attempt>/ (0700), holds ctx/ (the
 * extracted context), the executor's scratch files and a "pgid" file
 * naming the build step's process group. It is removed when the job is
 * closed, whatever the outcome (success, failure, cancel, timeout, peer
 * loss). All of this runs on the agent's loop; the job sends its own
 * STATUS/LOG/CREDIT/RESULT to its coordinator through the ROUTER.
 *
 * Ending a job takes three steps so that nothing is freed under a running
 * zloop timer and the loop never waits for a big tree to be deleted: the
 * job calls hooks.on_finished when its outcome is known; the agent then
 * calls af_job_close() from a reader handler, which releases everything
 * and removes the job dir in a worker thread; once the dir is gone the job
 * sends RESULT and calls hooks.on_closed; the agent then destroys it. */
#ifndef AF_AGENT_JOB_H
#define AF_AGENT_JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "confine.h"
#include "context_store.h"
#include "error.h"
#include "executor.h"
#include "platform.h"
#include "proto.h"

typedef enum {
    AF_JOB_RECEIVING,
    AF_JOB_READY,
    AF_JOB_EXTRACTING,
    AF_JOB_RUNNING,
    AF_JOB_DONE
} af_job_state_t;

/* What the agent lends every job; borrowed, must outlive the jobs. */
typedef struct {
    zloop_t *loop;
    zsock_t *router; /* replies go here (loop thread only) */
    af_context_store_t *store;
    const char *jobs_dir; /* workdir/jobs */
    const char *node;     /* this agent's name, for logs */
    af_platform_t build_platform;
    uint32_t default_timeout_s; /* when BUILD.timeout_s is 0; 0 = none */
    int kill_grace_ms;
    const af_confine_t *confine; /* native steps' confinement, borrowed; NULL = none */
    void (*on_ready)(void *arg, af_job_t *job);    /* context stored: may start */
    void (*on_finished)(void *arg, af_job_t *job); /* outcome known: close it soon */
    void (*on_closed)(void *arg, af_job_t *job);   /* RESULT sent: destroy it soon */
    void *arg;
} af_job_hooks_t;

/* A slice's outcome, as RESULT reports it. */
typedef struct {
    bool ok;
    char digest[AF_DIGEST_STR_MAX];
    char media_type[AF_MAX_NAME + 1];
    uint64_t size;
    char failure[16];  /* "" | build | infra | cancelled | timeout */
    int32_t exit_code; /* step status, -1 if none */
    char message[AF_MAX_STR + 1];
    int64_t pushed_bytes; /* ok only: blob bytes uploaded, -1 unknown */
} af_job_outcome_t;

/* Creates the job for a validated BUILD (taken, *build_p nulled even on
 * failure) run by EXECUTOR, and its job dir. If the store holds the
 * context it is pinned and the job starts READY. NULL with err on
 * failure (the dir cannot be made, bad field). */
af_job_t *af_job_new(const af_job_hooks_t *hooks, af_msg_t **build_p, const af_executor_t *executor,
                     af_err_t *err);

/* Hard stop: kills and reaps what still runs, waits for worker threads,
 * removes the job dir, sends nothing. NULL-safe; nulls *self_p. */
void af_job_destroy(af_job_t **self_p);

/* After ACCEPT: asks for the context (STATUS receiving + CREDIT) or, with
 * the context at hand (or an empty one), becomes READY via on_ready. */
void af_job_begin(af_job_t *self);

/* A CHUNK for this job (borrowed). Protocol faults fail the job "infra". */
void af_job_chunk(af_job_t *self, af_msg_t *chunk);

/* A slot is free: extract the context, then run the executor. READY only. */
void af_job_start(af_job_t *self);

/* Stops the job with FAILURE ("cancelled" | "timeout" | "infra") and a
 * message. Queued jobs finish at once; running ones when their worker or
 * executor has stopped. Ignored once an outcome is known. */
void af_job_cancel(af_job_t *self, const char *failure, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* After on_finished: releases everything, removes the job dir (in a
 * worker thread), then sends RESULT and calls on_closed (possibly before
 * returning). Call once, from a reader/poller handler. */
void af_job_close(af_job_t *self);

/* The coordinator is gone: send it nothing more (not even RESULT). */
void af_job_forget_peer(af_job_t *self);

/* Sends STATUS queued (once) while the job waits for a slot. */
void af_job_notify_queued(af_job_t *self);

const char *af_job_id(const af_job_t *self);
uint32_t af_job_attempt(const af_job_t *self);
af_job_state_t af_job_state(const af_job_t *self);
const char *af_job_state_name(af_job_state_t state);
bool af_job_have_context(const af_job_t *self);
/* True when the job receives a delta against BUILD's context_base. */
bool af_job_have_base(const af_job_t *self);
/* The coordinator's routing id (borrowed). */
zframe_t *af_job_peer(const af_job_t *self);
/* True if the job is JOB and ATTEMPT (0 = any attempt). */
bool af_job_matches(const af_job_t *self, const char *job, uint32_t attempt);

/* --- for executors --- */
zloop_t *af_job_loop(const af_job_t *self);
const af_msg_t *af_job_build(const af_job_t *self); /* the BUILD, borrowed */
const char *af_job_dir(const af_job_t *self);
/* The agent's confinement for build steps (NULL = none); borrowed. */
const af_confine_t *af_job_confine(const af_job_t *self);
const char *af_job_ctx_dir(const af_job_t *self);
const af_platform_t *af_job_platform(const af_job_t *self);
const af_platform_t *af_job_build_platform(const af_job_t *self);
const char *af_job_node(const af_job_t *self);
int af_job_kill_grace_ms(const af_job_t *self);
void af_job_log(af_job_t *self, const char *stream, const char *line);
void af_job_status(af_job_t *self, const char *state, const char *detail);
void af_job_set_exec_data(af_job_t *self, void *data);
void *af_job_exec_data(const af_job_t *self);
/* Records the build step's process group in the job dir ("pgid"), so a
 * restarted agent can find processes a crash left behind. */
void af_job_write_pgid(af_job_t *self, pid_t pgid);
/* The build step's pid (= its process group), 0 when none was started. */
pid_t af_job_step_pid(const af_job_t *self);
/* The executor has finished (once). A pending cancel/timeout wins. */
void af_job_executor_done(af_job_t *self, const af_job_outcome_t *outcome);

/* Outcome helpers for executors. */
void af_job_outcome_fail(af_job_outcome_t *out, const char *failure, int32_t exit_code,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
