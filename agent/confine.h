/* confine.h -- confinement of native build steps: Landlock (filesystem),
 * no_new_privs, a fresh session, resource limits.
 *
 * The agent creates one af_confine_t at start (it probes the kernel's
 * Landlock ABI once and logs what steps will get). For each step the parent
 * builds a ruleset (af_confine_prepare: may allocate, walk directories) and
 * the forked child applies it (af_confine_apply_child: async-signal-safe
 * system calls only) just before exec. A step may then read and execute
 * the system (/usr, /bin, /sbin, /lib*, /opt, /etc, /proc, /sys), write
 * /dev/null and friends, and read-write its own job dir; nothing else: not
 * /tmp, /home, the agent's workdir (context store, other jobs), config file
 * and directory, certificate and authorized keys, even when those sit in a
 * granted tree (the tree's other entries are granted instead). */
#ifndef AF_AGENT_CONFINE_H
#define AF_AGENT_CONFINE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

typedef struct af_confine af_confine_t;

typedef enum {
    AF_CONFINE_AUTO,     /* Landlock when the kernel has it, else unconfined (logged) */
    AF_CONFINE_REQUIRED, /* refuse to start without Landlock */
    AF_CONFINE_OFF,      /* no Landlock (rlimits, no_new_privs, setsid stay) */
} af_confine_mode_t;

/* Parses "auto" | "required" | "off"; -1 otherwise. */
int af_confine_mode_parse(const char *text, af_confine_mode_t *out);

typedef struct {
    af_confine_mode_t mode;
    /* the agent's own files, hidden from steps; borrowed for the call, ""
     * or NULL when unset */
    const char *workdir;
    const char *config_path;
    const char *cert;
    const char *authorized_keys;
    uint32_t nproc;       /* RLIMIT_NPROC per step, 0 = unchanged */
    uint64_t fsize_bytes; /* RLIMIT_FSIZE per step, 0 = unchanged */
} af_confine_spec_t;

/* Probes Landlock and logs once what steps get. NULL with err when mode is
 * REQUIRED and the kernel has no Landlock, or out of memory. Caller owns
 * the result. */
af_confine_t *af_confine_new(const af_confine_spec_t *spec, af_err_t *err);

/* NULL-safe; nulls *self_p. */
void af_confine_destroy(af_confine_t **self_p);

/* The Landlock ABI steps get, 0 when none. */
int af_confine_abi(const af_confine_t *self);

/* What a child applies before exec; built by af_confine_prepare. */
typedef struct {
    int ruleset_fd; /* -1: no Landlock */
    uint32_t nproc;
    uint64_t fsize_bytes;
} af_confine_child_t;

/* Builds the ruleset for a step whose job dir is JOB_DIR (read-write).
 * 0 on success (out->ruleset_fd is then owned by the caller: close it after
 * the fork, af_confine_child_close); -1 with err. SELF NULL: no Landlock,
 * rlimits unchanged. */
int af_confine_prepare(const af_confine_t *self, const char *job_dir, af_confine_child_t *out,
                       af_err_t *err);

/* Closes out->ruleset_fd (parent side, after the fork). */
void af_confine_child_close(af_confine_child_t *c);

/* In the forked child, before exec: no_new_privs, RLIMIT_CORE 0, the
 * configured rlimits, then Landlock. Async-signal-safe. Returns 0, or -1
 * with a static message in *why (the child must not exec then). */
int af_confine_apply_child(const af_confine_child_t *c, const char **why);

#endif
