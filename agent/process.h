/* process.h -- one child process (`sh -c CMD` or an argv list) driven by the agent's zloop.
 *
 * The child runs in its own process group with a given environment and
 * working directory, stdin from /dev/null, stdout and stderr on pipes. The
 * loop polls the pipes and a pidfd, so nothing ever blocks: output arrives
 * as lines (split at AF_MAX_LOG_LINE) through on_line, the exit status
 * through on_exit. af_process_kill() sends SIGTERM to the whole group and
 * SIGKILL after a grace period. When the child exits, whatever is left of
 * its group (background grandchildren) is killed too: nothing outlives the
 * step. Used by the native executor (and later the engine executors). */
#ifndef AF_AGENT_PROCESS_H
#define AF_AGENT_PROCESS_H

#include <czmq.h>
#include <stdbool.h>
#include <sys/types.h>

#include "confine.h"
#include "error.h"

typedef struct af_process af_process_t;

/* One line of output without its newline, LEN <= AF_MAX_LOG_LINE, NUL
 * terminated (NUL bytes in the output become '?'). STREAM is "stdout" or "stderr". Borrowed for the
 * call. */
typedef void(af_process_line_fn)(const char *stream, const char *line, size_t len, void *arg);

/* The child has exited and been reaped; STATUS is a waitpid(2) status.
 * Called once, as the last thing the process object does in that loop
 * turn: the callback may destroy the process. */
typedef void(af_process_exit_fn)(int status, void *arg);

/* Spawns `/bin/sh -c CMD` in CWD with ENVP (NULL-terminated "K=V" list,
 * borrowed for the call) as the leader of a new process group. All three
 * callbacks get ARG. Caller owns the result; NULL with err on failure. */
af_process_t *af_process_new(zloop_t *loop, const char *cmd, char *const envp[], const char *cwd,
                             af_process_line_fn *on_line, af_process_exit_fn *on_exit, void *arg,
                             af_err_t *err);

/* As af_process_new, but runs ARGV (NULL-terminated, borrowed for the
 * call) directly, no shell: ARGV[0] is looked up in the agent's $PATH
 * (posix_spawnp) and every element reaches the child verbatim. Same
 * process group, kill and output semantics. NULL with err on failure
 * (AF_ERR_INVAL for an empty ARGV, AF_ERR_CHILD when it cannot start). */
af_process_t *af_process_new_argv(zloop_t *loop, char *const argv[], char *const envp[],
                                  const char *cwd, af_process_line_fn *on_line,
                                  af_process_exit_fn *on_exit, void *arg, af_err_t *err);

/* af_process_new, confined: the child is forked (not posix_spawn), starts
 * a new session (so it leads a new process group), and applies CONF
 * (af_confine_apply_child: no_new_privs, rlimits, Landlock) before exec;
 * if that fails the step writes why to its stderr and exits 126. CONF
 * borrowed for the call (its ruleset fd stays the caller's); NULL: as
 * af_process_new. */
af_process_t *af_process_new_confined(zloop_t *loop, const char *cmd, char *const envp[],
                                      const char *cwd, const af_confine_child_t *conf,
                                      af_process_line_fn *on_line, af_process_exit_fn *on_exit,
                                      void *arg, af_err_t *err);

/* Kills a running child's group (SIGKILL), reaps it (waitpid, which is
 * quick after SIGKILL), stops polling and closes everything. on_exit is
 * not called. NULL-safe; nulls *self_p. */
void af_process_destroy(af_process_t **self_p);

/* SIGTERM to the process group now, SIGKILL after GRACE_MS (0: at once).
 * No-op once the child has exited. */
void af_process_kill(af_process_t *self, int grace_ms);

/* Child pid, which is also its process group id. */
pid_t af_process_pid(const af_process_t *self);

/* True once the child has exited and been reaped. */
bool af_process_exited(const af_process_t *self);

/* Human text for a waitpid status: "exited with status N" or "killed by
 * signal S (NAME)". Writes to buf, returns buf. */
char *af_process_status_text(int status, char *buf, size_t len);

#endif
