/* recovery.h -- what an agent finds after a crash or a SIGKILL: build
 * processes of its previous run, still alive (reparented to init), in the
 * job dirs it left. Used once at startup, before the queue opens (which
 * therefore starts empty), by agent.c's stale job dir cleanup. */
#ifndef AF_AGENT_RECOVERY_H
#define AF_AGENT_RECOVERY_H

#include <stddef.h>

#define AF_RECOVERY_WAIT_MS 3000 /* how long we wait for killed processes to go */

/* Kills every process of the previous run that belongs to JOB_DIR: the
 * process group recorded in JOB_DIR/pgid (written when the step started),
 * once a member of that group is confirmed to be ours, and any process
 * whose working directory lies inside JOB_DIR (a step that left its group).
 * A process is ours when its cwd (/proc/PID/cwd) is inside JOB_DIR or its
 * environment (/proc/PID/environ) holds AF_RECOVERY_ENV=JOB_DIR; a
 * recycled pid or pgid of an unrelated process is never signalled.
 * SIGKILL, then waits at most AF_RECOVERY_WAIT_MS for them to disappear.
 * Returns the number of processes signalled (0 when none), never fails:
 * problems are logged. */
size_t af_recovery_kill_job(const char *job_dir);

/* Runs af_recovery_kill_job on every dir in WORKDIR/jobs. Call before
 * the agent starts (the agent then removes the dirs). Returns the number
 * of processes signalled. */
size_t af_recovery_run(const char *workdir);

/* The environment variable a build step may carry to mark it as ours
 * (see af_recovery_kill_job). */
#define AF_RECOVERY_ENV "ARCHFARM_JOB_DIR"

#endif
