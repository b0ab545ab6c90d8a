/* agent.h -- the archfarm build agent: one zloop serving coordinators.
 *
 * Binds a ROUTER on the configured endpoint and speaks the protocol of
 * docs/protocol.md: HELLO/WELCOME, HEARTBEAT (Paranoid Pirate liveness in
 * both directions), BUILD -> ACCEPT or RESULT, CREDIT/CHUNK context
 * transfer, STATUS/LOG while building, CANCEL, RESULT, ERROR for anything
 * malformed. Peers are known by routing id; a coordinator silent for
 * liveness x heartbeat_ms is dead and its jobs are cancelled. At most
 * max_jobs slices run at once; more are accepted, receive their context,
 * and start FIFO. Nothing here blocks: child processes are polled by the
 * loop, extraction and image assembly run in worker threads. */
#ifndef AF_AGENT_AGENT_H
#define AF_AGENT_AGENT_H

#include <czmq.h>

#include "config.h"
#include "error.h"

typedef struct af_agent af_agent_t;

/* Prepares the workdir (removing job dirs a crash left behind), opens the
 * context store, picks the executors and binds. CONFIG is copied and must
 * have passed af_agent_config_finish(). Caller owns; NULL with err:
 * AF_ERR_UNSUPPORTED/AF_ERR_INVAL for a configuration the agent cannot
 * serve, other codes for runtime failures (workdir, bind). */
af_agent_t *af_agent_new(const af_agent_config_t *config, af_err_t *err);

/* Hard stop: kills and reaps what still runs, removes job dirs, closes the
 * socket. NULL-safe; nulls *self_p. */
void af_agent_destroy(af_agent_t **self_p);

/* Serves until SIGINT/SIGTERM (zsys_interrupted), then drains: no new
 * jobs, running jobs are cancelled (process groups get SIGTERM, then
 * SIGKILL after kill_grace_ms), their coordinators get RESULT cancelled and
 * their job dirs are removed. A second signal skips the wait. Returns 0. */
int af_agent_run(af_agent_t *self);

/* The endpoint actually bound (a wildcard port resolved). Borrowed. */
const char *af_agent_endpoint(const af_agent_t *self);

/* zactor body for tests: ARGS is a finished af_agent_config_t (borrowed
 * until the actor signals). Then sends the bound endpoint as a string
 * ("" when the agent could not start); runs until $TERM, then drains and
 * exits. */
void af_agent_actor(zsock_t *pipe, void *args);

#endif
