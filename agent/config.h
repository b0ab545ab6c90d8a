/* config.h -- the agent's configuration: agent.yaml (libyaml) and flags.
 *
 * A plain value struct, no ownership. Defaults, then the file, then the
 * command-line flags (which use the same key names with '-' for '_'),
 * then af_agent_config_finish() fills what is still unset from the host
 * (platform from uname, name from the hostname) and checks the whole.
 * Unknown keys are errors. File errors read "FILE:LINE:COL: message";
 * flag errors "--flag: message". config/agent.yaml documents every key. */
#ifndef AF_AGENT_CONFIG_H
#define AF_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "limits.h"
#include "platform.h"

#define AF_AGENT_DEFAULT_LISTEN "tcp://*:7420"
#define AF_AGENT_DEFAULT_WORKDIR "/var/lib/archfarm-agent"
#define AF_AGENT_DEFAULT_CONTEXT_CACHE 4
#define AF_AGENT_DEFAULT_KILL_GRACE_MS 5000
#define AF_AGENT_CONFIG_MAX_BYTES (1024 * 1024)
#define AF_AGENT_PATH_MAX 1024

typedef struct {
    char listen[AF_MAX_REF + 1];          /* ZeroMQ endpoint to bind */
    char name[AF_MAX_NAME + 1];           /* node name; "" = hostname */
    af_platform_t platforms[AF_MAX_LIST]; /* served natively; none = host */
    size_t n_platforms;
    char workdir[AF_AGENT_PATH_MAX];         /* jobs/ and contexts/ live here */
    uint32_t max_jobs;                       /* slices running at once */
    char executor[16];                       /* auto | an executor's name */
    bool insecure;                           /* plaintext transport */
    char cert[AF_AGENT_PATH_MAX];            /* CURVE server certificate */
    char authorized_keys[AF_AGENT_PATH_MAX]; /* CURVE client public keys */
    uint32_t heartbeat_ms;                   /* heartbeat interval */
    uint32_t liveness;                       /* silent intervals before a peer is dead */
    uint32_t job_timeout_s;                  /* default per-job limit, 0 = none */
    uint32_t context_cache;                  /* contexts kept in workdir/contexts */
    uint32_t kill_grace_ms;                  /* SIGTERM -> SIGKILL delay */
    uint32_t drain_s;                        /* on SIGTERM, time running jobs get to finish */
    /* the agent's own registry credentials (Docker config.json format),
     * used when a BUILD brings none; "" = none */
    char registry_auth_file[AF_AGENT_PATH_MAX];
    char confine[16];                        /* auto | required | off (native steps) */
    uint32_t step_nproc;                     /* RLIMIT_NPROC per step, 0 = unchanged */
    uint32_t step_fsize_mb;                  /* RLIMIT_FSIZE per step in MiB, 0 = unchanged */
    char config_path[AF_AGENT_PATH_MAX];     /* the agent.yaml loaded, "" = none */
} af_agent_config_t;

/* Fills the defaults. Cannot fail. */
void af_agent_config_defaults(af_agent_config_t *self);

/* Reads PATH (at most AF_AGENT_CONFIG_MAX_BYTES) over SELF. An empty file
 * changes nothing. */
int af_agent_config_load(af_agent_config_t *self, const char *path, af_err_t *err)
    __attribute__((warn_unused_result));
int af_agent_config_load_buffer(af_agent_config_t *self, const char *name, const char *data,
                                size_t len, af_err_t *err) __attribute__((warn_unused_result));

/* Sets one key from text, as a flag would ("max_jobs", "4"). ORIGIN
 * prefixes error messages (e.g. "--max-jobs"). "platform" appends one
 * platform (or a comma list); "platforms" replaces the list. */
int af_agent_config_set(af_agent_config_t *self, const char *key, const char *value,
                        const char *origin, af_err_t *err) __attribute__((warn_unused_result));

/* Fills unset values from the host and validates. */
int af_agent_config_finish(af_agent_config_t *self, af_err_t *err)
    __attribute__((warn_unused_result));

/* "linux/amd64,linux/arm64" into buf. Returns buf. */
char *af_agent_config_platforms(const af_agent_config_t *self, char *buf, size_t len);

#endif
