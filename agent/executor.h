/* executor.h -- how a slice is built once its context is extracted.
 *
 * An executor is a table of functions. The job calls start() from the
 * loop once the context sits in af_job_ctx_dir(); the executor then works
 * without blocking the loop (child processes polled by the loop, blocking
 * parts in a worker thread), reports with af_job_log()/af_job_status(),
 * and ends with exactly one af_job_executor_done(). cancel() asks it to
 * stop soon (it still ends with af_job_executor_done()). release() frees
 * its per-job state (af_job_exec_data()) when the job closes; it may kill
 * and reap what is still running. Native recipes (archfarm.yaml) are
 * executor_native.c; engine executors (buildah, buildctl, docker) for
 * Dockerfiles each get their own file. */
#ifndef AF_AGENT_EXECUTOR_H
#define AF_AGENT_EXECUTOR_H

#include <stdbool.h>

#include "error.h"

typedef struct af_job af_job_t;

typedef struct af_executor {
    const char *name;                           /* "native", reported in WELCOME */
    const char *const *kinds;                   /* recipe kinds it builds, NULL-terminated */
    bool (*probe)(void);                        /* usable on this host (tools installed) */
    int (*start)(af_job_t *job, af_err_t *err); /* 0, or an error: the job fails "infra" */
    void (*cancel)(af_job_t *job);
    void (*release)(af_job_t *job);
} af_executor_t;

/* The native recipe executor: build.run on the host, then layer + config +
 * manifest pushed to the registry. Always available. */
extern const af_executor_t af_executor_native;

/* Dockerfile engines (executor_buildah.c, executor_buildctl.c,
 * executor_docker.c): available when probe() finds the engine. */
extern const af_executor_t af_executor_buildah;
extern const af_executor_t af_executor_buildctl;
extern const af_executor_t af_executor_docker;

/* True if SELF builds recipes of KIND. */
bool af_executor_supports(const af_executor_t *self, const char *kind);

/* Executors compiled in, NULL-terminated, in order of preference. */
const af_executor_t *const *af_executor_all(void);

#endif
