/* push_target.h -- where a slice's image goes, and what comes back.
 *
 * A BUILD names the target repository and the registry settings for it
 * (insecure or not, credentials). Each executor hands a copy of them to
 * the worker thread that pushes or checks the image (assemble.c,
 * executor_buildah.c, engine.c). The password lives only here, in memory,
 * and is wiped when the target is cleared. The worker reports the manifest
 * it pushed as three worker outputs (digest, media type, size), which the
 * loop turns back into a job outcome with af_push_target_outcome(). */
#ifndef AF_AGENT_PUSH_TARGET_H
#define AF_AGENT_PUSH_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#include "compress.h"
#include "error.h"
#include "job.h"
#include "proto.h"
#include "ref.h"
#include "registry.h"
#include "worker.h"

typedef struct {
    char *repository;     /* "host[:port]/path", no tag */
    bool insecure;        /* plain HTTP / unverified TLS allowed */
    char *username;       /* NULL = anonymous */
    char *password;       /* secret: NULL or non-empty; wiped by af_push_target_clear */
    bool docker;          /* push Docker v2 manifests (BUILD manifest_format "docker") */
    af_kv_t *annotations; /* for the manifest (BUILD annotations); owned */
    size_t n_annotations;
    af_compress_algo_t compression; /* layers packed here (BUILD compression) */
    int compression_level;          /* 0 = the algorithm's default */
} af_push_target_t;

/* Copies BUILD's repository and registry settings into *self, which is
 * overwritten (clear it first if it held anything). Empty credentials
 * become NULL. 0, or AF_ERR_NOMEM with *self cleared. BUILD is borrowed. */
int af_push_target_from_build(af_push_target_t *self, const af_msg_t *build)
    __attribute__((warn_unused_result));

/* Frees the strings, wiping the password first, and zeroes *self.
 * NULL-safe, safe twice. */
void af_push_target_clear(af_push_target_t *self);

/* When BUILD (borrowed, modified) carries no registry credentials and
 * AUTH_FILE (the agent's registry_auth_file; "" or NULL = none) holds some
 * for the BUILD's registry, puts them into BUILD (which then owns the
 * password and zeroes it). 0 when done or nothing to do; an error naming
 * the file when it cannot be read or decoded. Never logs a secret. */
int af_push_target_own_credentials(af_msg_t *build, const char *auth_file, af_err_t *err)
    __attribute__((warn_unused_result));

/* Parses the repository into *ref (a tag or digest there is an error) and
 * opens a registry client for it with the target's settings. Caller owns
 * the client; NULL with err set on failure. */
af_registry_t *af_push_target_open(const af_push_target_t *self, af_ref_t *ref, af_err_t *err);

/* Worker side: reports the pushed manifest (digest, media type, size) as
 * the worker's outputs. 0 or AF_ERR_NOMEM with err set. */
int af_push_target_report(af_worker_ctx_t *ctx, const char *digest, const char *media_type,
                          size_t size, af_err_t *err) __attribute__((warn_unused_result));

/* Worker side, after af_push_target_report: how many blob bytes the push
 * uploaded (af_registry_pushed_bytes), the optional fourth output. A
 * worker that cannot tell (an engine pushing by itself) does not call it
 * and RESULT says -1. 0 or AF_ERR_NOMEM with err set. */
int af_push_target_report_pushed(af_worker_ctx_t *ctx, uint64_t pushed_bytes, af_err_t *err)
    __attribute__((warn_unused_result));

/* Loop side: the job outcome for a push worker that ended with CODE and
 * MESSAGE and OUTPUTS (as reported above; pushed_bytes -1 without the
 * fourth). CANCELLED forces a "cancelled"
 * outcome; EXIT_CODE goes into failures. Cannot fail. */
void af_push_target_outcome(af_job_outcome_t *out, int code, const char *message,
                            const char *const *outputs, size_t n_outputs, bool cancelled,
                            int32_t exit_code);

#endif
